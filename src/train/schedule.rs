//! Learning-rate schedules, per epoch: constant, step (×gamma every N epochs), cosine, and
//! reduce-on-plateau on validation error (the paper divided by 10 by hand when the
//! validation error stopped improving).

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Schedule {
    Constant,
    /// `lr = base · gamma^⌊epoch / every⌋` (torch.optim.lr_scheduler.StepLR).
    Step {
        every: usize,
        gamma: f64,
    },
    /// `lr = min + (base − min)(1 + cos(π · epoch / epochs)) / 2` (CosineAnnealingLR).
    Cosine {
        epochs: usize,
        min_lr: f64,
    },
    /// Multiply by `factor` when the validation error has not improved by more than a
    /// relative `threshold` for `patience` epochs (ReduceLROnPlateau, mode "min").
    Plateau {
        factor: f64,
        patience: usize,
        threshold: f64,
        min_lr: f64,
    },
}

impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Schedule::Constant => write!(f, "constant rate"),
            Schedule::Step { every, gamma } => write!(f, "rate x{gamma} every {every} epochs"),
            Schedule::Cosine { epochs, min_lr } => {
                write!(f, "cosine schedule to {min_lr} over {epochs} epochs")
            }
            Schedule::Plateau {
                factor, patience, ..
            } => write!(
                f,
                "rate x{factor} after {patience} epochs without improvement"
            ),
        }
    }
}

/// The schedule with its state, which checkpoints keep so a resumed run continues it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LrScheduler {
    pub schedule: Schedule,
    pub base_lr: f64,
    /// Plateau state: the current rate, the best error seen and epochs since it improved.
    pub plateau_lr: f64,
    pub best_error: f64,
    pub bad_epochs: usize,
}

impl LrScheduler {
    pub fn new(schedule: Schedule, base_lr: f64) -> Self {
        Self {
            schedule,
            base_lr,
            plateau_lr: base_lr,
            // Not infinity: JSON (checkpoint metadata) has no infinity.
            best_error: f64::MAX,
            bad_epochs: 0,
        }
    }

    /// The rate for `epoch` (0-based).
    pub fn lr(&self, epoch: usize) -> f64 {
        match &self.schedule {
            Schedule::Constant => self.base_lr,
            Schedule::Step { every, gamma } => {
                self.base_lr * gamma.powi((epoch / (*every).max(1)) as i32)
            }
            Schedule::Cosine { epochs, min_lr } => {
                let t = (epoch as f64 / (*epochs).max(1) as f64).min(1.0);
                min_lr + (self.base_lr - min_lr) * (1.0 + (std::f64::consts::PI * t).cos()) / 2.0
            }
            Schedule::Plateau { .. } => self.plateau_lr,
        }
    }

    /// Feeds one epoch's validation error (1 − top-1); only the plateau schedule listens.
    pub fn observe(&mut self, val_error: f64) {
        let Schedule::Plateau {
            factor,
            patience,
            threshold,
            min_lr,
        } = self.schedule
        else {
            return;
        };
        if val_error < self.best_error * (1.0 - threshold) {
            self.best_error = val_error;
            self.bad_epochs = 0;
        } else {
            self.bad_epochs += 1;
            if self.bad_epochs > patience {
                self.plateau_lr = (self.plateau_lr * factor).max(min_lr);
                self.bad_epochs = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_divides_by_ten_every_n_epochs() {
        let s = LrScheduler::new(
            Schedule::Step {
                every: 2,
                gamma: 0.1,
            },
            0.01,
        );
        let lrs: Vec<f64> = (0..5).map(|e| s.lr(e)).collect();
        let want = [0.01, 0.01, 0.001, 0.001, 0.0001];
        for (got, want) in lrs.iter().zip(want) {
            assert!((got - want).abs() < 1e-15, "{lrs:?}");
        }
    }

    #[test]
    fn cosine_goes_from_base_to_min() {
        let s = LrScheduler::new(
            Schedule::Cosine {
                epochs: 4,
                min_lr: 0.0,
            },
            1.0,
        );
        assert_eq!(s.lr(0), 1.0);
        assert!((s.lr(2) - 0.5).abs() < 1e-12);
        assert!(s.lr(4).abs() < 1e-12);
    }

    #[test]
    fn state_survives_json() {
        let s = LrScheduler::new(Schedule::Constant, 0.1);
        let back: LrScheduler = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn plateau_reduces_after_patience_epochs_without_improvement() {
        let plateau = Schedule::Plateau {
            factor: 0.1,
            patience: 1,
            threshold: 1e-4,
            min_lr: 0.0,
        };
        let mut s = LrScheduler::new(plateau, 0.01);
        for (err, want) in [
            (0.5, 0.01),
            (0.4, 0.01),
            (0.4, 0.01),
            (0.45, 0.001),
            (0.3, 0.001),
        ] {
            s.observe(err);
            assert!(
                (s.lr(0) - want).abs() < 1e-15,
                "after error {err}: {}",
                s.lr(0)
            );
        }
    }
}
