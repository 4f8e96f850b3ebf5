//! The experiment's progress over all its runs and workers: one log line after every epoch
//! any run finishes, with the time left at the recent pace.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::train::experiment::Job;
use crate::train::metrics::{read_metrics, EpochMetrics};
use crate::train::observer::EpochObserver;

/// The experiment's progress over all its runs and workers, for one log line after every
/// epoch any run finishes: epochs done of all, and the time left at the recent pace.
/// (The runs' own progress bars are off: many runs share one terminal.)
pub(super) struct Progress {
    total: usize,
    /// Epochs finished, those of earlier invocations included.
    done: usize,
    started: Instant,
    /// When (since `started`) each of the last `RECENT_EPOCHS + 1` epochs ended, by any worker.
    ends: VecDeque<Duration>,
}

/// The epochs whose pace predicts the rest: the latest, so that an earlier stretch on a
/// shared or paused machine soon stops counting.
const RECENT_EPOCHS: usize = 8;

impl Progress {
    pub(super) fn new(jobs: &[Job]) -> Self {
        let finished_epochs = |job: &Job| {
            read_metrics(&job.config.metrics_path()).map_or(0, |m| m.len().min(job.config.epochs))
        };
        Self {
            total: jobs.iter().map(|j| j.config.epochs).sum(),
            done: jobs.iter().map(finished_epochs).sum(),
            started: Instant::now(),
            ends: VecDeque::new(),
        }
    }

    /// An epoch ended `at` after `started`.
    fn epoch_ended(&mut self, at: Duration) {
        self.done += 1;
        self.ends.push_back(at);
        if self.ends.len() > RECENT_EPOCHS + 1 {
            self.ends.pop_front();
        }
    }

    /// The epochs still to train at the pace of the last `RECENT_EPOCHS` (all workers
    /// together; counted from the start of this invocation until there are that many);
    /// `None` before the first.
    fn left(&self) -> Option<Duration> {
        let last = *self.ends.back()?;
        let (anchor, epochs) = if self.ends.len() > RECENT_EPOCHS {
            (self.ends[0], self.ends.len() - 1)
        } else {
            (Duration::ZERO, self.ends.len())
        };
        let to_go = self.total.saturating_sub(self.done) as f64;
        Some((last - anchor).mul_f64(to_go / epochs as f64))
    }
}

/// Counts each finished epoch of a run into the shared [`Progress`] and logs it.
pub(super) struct ProgressHook(pub(super) Arc<Mutex<Progress>>);

impl EpochObserver for ProgressHook {
    fn epoch_ended(&mut self, _history: &[EpochMetrics]) -> Result<()> {
        let mut p = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let at = p.started.elapsed();
        p.epoch_ended(at);
        if let Some(left) = p.left() {
            log::info!(
                "experiment: {}/{} epochs done, {} left",
                p.done,
                p.total,
                hours_minutes(left)
            );
        }
        Ok(())
    }
}

/// `about 2 h 05 min`, `about 7 min` under an hour, `nothing` when done, `under a minute`.
fn hours_minutes(d: Duration) -> String {
    let minutes = (d.as_secs() + 30) / 60;
    match minutes {
        _ if d.is_zero() => "nothing".into(),
        0 => "under a minute".into(),
        1..=59 => format!("about {minutes} min"),
        _ => format!("about {} h {:02} min", minutes / 60, minutes % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_is_the_epochs_to_go_at_the_recent_pace() {
        let mut p = Progress {
            total: 54,
            done: 12,
            started: Instant::now(),
            ends: VecDeque::new(),
        };
        let s = Duration::from_secs;
        assert_eq!(p.left(), None);
        // 12 done before, 4 in 600 s here: 38 to go at 150 s each.
        for t in [150, 300, 450, 600] {
            p.epoch_ended(s(t));
        }
        assert_eq!(p.left(), Some(s(38 * 150)));
        // A pause of an hour, then 9 epochs at 100 s: the pause drops out of the window.
        p.epoch_ended(s(600 + 3600 + 100));
        assert!(p.left().unwrap() > s(37 * 150));
        for i in 2..=9 {
            p.epoch_ended(s(4200 + 100 * i));
        }
        assert_eq!(p.done, 25);
        assert_eq!(p.left(), Some(s(29 * 100)));
        assert_eq!(hours_minutes(s(5700)), "about 1 h 35 min");
        assert_eq!(hours_minutes(s(89)), "about 1 min");
        assert_eq!(hours_minutes(s(0)), "nothing");
        assert_eq!(hours_minutes(s(29)), "under a minute");
    }
}
