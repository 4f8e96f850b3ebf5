//! What the training loop tells the outside as it runs: the progress bar, the plots after
//! every epoch, and any hook a caller adds, behind one trait so the loop knows none of them.

use std::path::PathBuf;

use crate::error::Result;
use crate::train::metrics::EpochMetrics;
use crate::train::plot::plot_training;

/// Receives the training loop's progress. Every method has an empty default.
pub trait EpochObserver {
    /// Epoch `epoch` (0-based) of `epochs` starts at batch `start` of `batches` (later than
    /// 0 when a run resumes mid-epoch).
    fn epoch_started(&mut self, _epoch: usize, _epochs: usize, _batches: usize, _start: usize) {}

    /// A training step finished at batch `batch` (1-based); `loss_and_lr` when the loss
    /// totals were just read back: the epoch's running mean loss and the learning rate.
    fn step(&mut self, _batch: usize, _loss_and_lr: Option<(f64, f64)>) {}

    /// The epoch's steps are over (finished, interrupted or stopped by NaN/Inf).
    fn steps_ended(&mut self) {}

    /// An epoch was validated and logged; `history` holds every epoch's metrics so far
    /// (those of the run a resumed run continues too).
    fn epoch_ended(&mut self, _history: &[EpochMetrics]) -> Result<()> {
        Ok(())
    }
}

/// A terminal progress bar over an epoch's batches with the loss and learning rate.
#[derive(Default)]
pub struct ProgressBar {
    bar: Option<indicatif::ProgressBar>,
}

impl EpochObserver for ProgressBar {
    fn epoch_started(&mut self, epoch: usize, epochs: usize, batches: usize, start: usize) {
        let bar = indicatif::ProgressBar::new(batches as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} batches  {per_sec}  ETA {eta}  {msg}",
            )
            .expect("a valid progress template")
            .progress_chars("=> "),
        );
        bar.set_prefix(format!("epoch {}/{epochs}", epoch + 1));
        bar.set_position(start as u64);
        self.bar = Some(bar);
    }

    fn step(&mut self, batch: usize, loss_and_lr: Option<(f64, f64)>) {
        if let Some(bar) = &self.bar {
            if let Some((loss, lr)) = loss_and_lr {
                bar.set_message(format!("loss {loss:.4}  lr {lr:.2e}"));
            }
            bar.set_position(batch as u64);
        }
    }

    fn steps_ended(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// Redraws the loss, accuracy and learning-rate plots in `dir` after every epoch.
pub struct Plots {
    pub dir: PathBuf,
}

impl EpochObserver for Plots {
    fn epoch_ended(&mut self, history: &[EpochMetrics]) -> Result<()> {
        plot_training(history, &self.dir).map(|_| ())
    }
}

/// Several observers, called in order.
#[derive(Default)]
pub struct Observers(pub Vec<Box<dyn EpochObserver>>);

impl EpochObserver for Observers {
    fn epoch_started(&mut self, epoch: usize, epochs: usize, batches: usize, start: usize) {
        for o in &mut self.0 {
            o.epoch_started(epoch, epochs, batches, start);
        }
    }

    fn step(&mut self, batch: usize, loss_and_lr: Option<(f64, f64)>) {
        for o in &mut self.0 {
            o.step(batch, loss_and_lr);
        }
    }

    fn steps_ended(&mut self) {
        for o in &mut self.0 {
            o.steps_ended();
        }
    }

    fn epoch_ended(&mut self, history: &[EpochMetrics]) -> Result<()> {
        for o in &mut self.0 {
            o.epoch_ended(history)?;
        }
        Ok(())
    }
}
