//! What an experiment's report measures and judges: the per-run figures (`Metric`), their
//! statistics over seeds (`Stat`, `median`), and the claims an experiment file lists
//! (`Claim`), which `report` turns into verdicts.

use serde::Deserialize;

use crate::train::experiment::VariantResult;
use crate::train::metrics::EpochMetrics;

/// The training accuracy of the paper's Figure 1: epochs to reach 25 % training error.
pub const FIGURE1_TRAIN_TOP1: f64 = 0.75;

/// A per-run figure the report tabulates and a claim may compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Validation top-1 after the last epoch.
    FinalTop1,
    /// Best validation top-1 over the epochs.
    BestTop1,
    FinalTop5,
    FinalValLoss,
    FinalTrainLoss,
    /// The final network's top-1 on training images minus its validation top-1, both in
    /// evaluation mode (no augmentation, no dropout): how much better it does on what it
    /// trained on. (The training batches' own top-1 would not do: augmentation and dropout
    /// lower it, so the variants without them would look as if they overfit more.)
    Overfit,
    /// When training top-1 first reaches 75 % (the paper's Figure 1), in epochs, read off the
    /// per-epoch curve as a figure is read: interpolated linearly between the epoch before
    /// and the epoch that reaches it (the first epoch itself when that one does). A run that
    /// never does counts as one epoch more than it ran.
    #[serde(rename = "epochs_to_25pct_train_error")]
    EpochsTo25PctTrainError,
    /// How far validation top-1 fell back, summed over consecutive epochs (0 for a curve that
    /// never falls): how unsteady training is. (A rising curve's steps measure its speed, not
    /// its steadiness, so only the falls count.) The name `val_top1_jitter` is still read.
    #[serde(alias = "val_top1_jitter")]
    ValTop1Drops,
    /// Training loss averaged over the epochs, the area under its curve: lower is a network
    /// that got there sooner as well as one that ended lower.
    MeanTrainLoss,
    /// Validation top-1 after the last epoch minus after the one before: whether the curve
    /// has flattened (a run of one epoch has no gain to show).
    LastEpochGain,
}

impl Metric {
    pub fn higher_is_better(self) -> bool {
        matches!(
            self,
            Metric::FinalTop1 | Metric::BestTop1 | Metric::FinalTop5
        )
    }

    pub fn percent(self) -> bool {
        !matches!(
            self,
            Metric::FinalValLoss
                | Metric::FinalTrainLoss
                | Metric::MeanTrainLoss
                | Metric::EpochsTo25PctTrainError
        )
    }

    pub fn label(self) -> &'static str {
        match self {
            Metric::FinalTop1 => "final top-1",
            Metric::BestTop1 => "best top-1",
            Metric::FinalTop5 => "final top-5",
            Metric::FinalValLoss => "final val loss",
            Metric::FinalTrainLoss => "final train loss",
            Metric::Overfit => "train − val top-1",
            Metric::EpochsTo25PctTrainError => "epochs to 25% train error",
            Metric::ValTop1Drops => "val top-1 drops",
            Metric::MeanTrainLoss => "mean train loss",
            Metric::LastEpochGain => "last epoch's top-1 gain",
        }
    }

    pub fn value(self, run: &VariantResult) -> f64 {
        let e = &run.epochs;
        let last = |f: fn(&EpochMetrics) -> f64| e.last().map_or(f64::NAN, f);
        match self {
            Metric::FinalTop1 => last(|m| m.val_top1),
            Metric::BestTop1 => e.iter().map(|m| m.val_top1).fold(f64::NAN, f64::max),
            Metric::FinalTop5 => last(|m| m.val_top5),
            Metric::FinalValLoss => last(|m| m.val_loss),
            Metric::FinalTrainLoss => last(|m| m.train_loss),
            Metric::Overfit => run.train_eval.map_or(f64::NAN, |t| t.top1) - last(|m| m.val_top1),
            Metric::EpochsTo25PctTrainError => {
                match e.iter().position(|m| m.train_top1 >= FIGURE1_TRAIN_TOP1) {
                    None => e.len() as f64 + 1.0,
                    Some(0) => e[0].epoch as f64,
                    Some(i) => {
                        let (a, b) = (&e[i - 1], &e[i]);
                        let part =
                            (FIGURE1_TRAIN_TOP1 - a.train_top1) / (b.train_top1 - a.train_top1);
                        a.epoch as f64 + part * (b.epoch - a.epoch) as f64
                    }
                }
            }
            Metric::ValTop1Drops => e
                .windows(2)
                .map(|w| (w[0].val_top1 - w[1].val_top1).max(0.0))
                .sum(),
            Metric::MeanTrainLoss => e.iter().map(|m| m.train_loss).sum::<f64>() / e.len() as f64,
            Metric::LastEpochGain => match e.as_slice() {
                [.., before, last] => last.val_top1 - before.val_top1,
                _ => f64::NAN,
            },
        }
    }

    pub fn format(self, v: f64) -> String {
        if self.percent() {
            format!("{:.1}", 100.0 * v)
        } else if self == Metric::EpochsTo25PctTrainError {
            format!("{v:.2}")
        } else {
            format!("{v:.3}")
        }
    }
}

/// A claim of the tutorial to test: `better` beats `worse` on `metric`, or, with `among`,
/// which of several variants wins.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    pub text: String,
    pub metric: Metric,
    pub better: Option<String>,
    pub worse: Option<String>,
    pub among: Option<Vec<String>>,
}

impl Claim {
    /// The variants it names, and whether it names them in one of the two forms.
    pub fn check(&self, variants: &[&str]) -> std::result::Result<(), String> {
        let names: Vec<&String> = match (&self.better, &self.worse, &self.among) {
            (Some(b), Some(w), None) => vec![b, w],
            (None, None, Some(a)) if a.len() >= 2 => a.iter().collect(),
            _ => {
                return Err(format!(
                    "[[claim]] '{}': give better and worse, or among with two or more variants",
                    self.text
                ))
            }
        };
        match names.iter().find(|n| !variants.contains(&n.as_str())) {
            Some(n) => Err(format!("[[claim]] '{}': no variant named '{n}'", self.text)),
            None => Ok(()),
        }
    }
}

/// Mean and sample standard deviation (n − 1; 0 for one run) of a figure over seeds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stat {
    pub mean: f64,
    pub std: f64,
    pub n: usize,
}

impl Stat {
    pub fn of(values: &[f64]) -> Stat {
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n as f64;
        let var = if n > 1 {
            values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64
        } else {
            0.0
        };
        Stat {
            mean,
            std: var.sqrt(),
            n,
        }
    }
}

/// The middle value (the mean of the two middle ones for an even count; NaN for none): a
/// run's typical epoch, which an epoch slowed by a paused or shared machine does not move.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_no_values() {
        assert_eq!(median(vec![300.0, 30.0, 290.0]), 290.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(vec![]).is_nan());
    }

    #[test]
    fn mean_and_sample_standard_deviation() {
        let s = Stat::of(&[1.0, 2.0, 3.0]);
        assert_eq!((s.mean, s.std, s.n), (2.0, 1.0, 3));
        assert_eq!(Stat::of(&[5.0]).std, 0.0);
    }
}
