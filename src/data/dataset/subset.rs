//! Subsets of a dataset and the stratified train/validation split.

use std::collections::BTreeMap;
use std::sync::Arc;

use image::RgbImage;

use super::Dataset;
use crate::data::transforms::SampleRng;
use crate::error::{Error, Result};

/// The samples `indices` of `inner`, in that order.
#[derive(Clone)]
pub struct Subset {
    pub inner: Arc<dyn Dataset>,
    pub indices: Vec<usize>,
}

impl Subset {
    /// # Errors
    /// [`Error::Config`] when an index is out of range.
    pub fn new(inner: Arc<dyn Dataset>, indices: Vec<usize>) -> Result<Subset> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= inner.len()) {
            return Err(Error::Config(format!(
                "subset index {bad} is out of range for a dataset of {} samples",
                inner.len()
            )));
        }
        Ok(Subset { inner, indices })
    }
}

impl std::fmt::Debug for Subset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subset")
            .field("len", &self.indices.len())
            .finish()
    }
}

impl Dataset for Subset {
    fn len(&self) -> usize {
        self.indices.len()
    }
    fn classes(&self) -> &[String] {
        self.inner.classes()
    }
    fn label(&self, index: usize) -> usize {
        self.inner.label(self.indices[index])
    }
    fn load(&self, index: usize) -> Result<RgbImage> {
        self.inner.load(self.indices[index])
    }
    fn load_draft(&self, index: usize, resize: usize) -> Result<RgbImage> {
        self.inner.load_draft(self.indices[index], resize)
    }
    fn describe(&self, index: usize) -> String {
        self.inner.describe(self.indices[index])
    }
}

/// Splits `ds` into (train, validation), stratified by class: within each class the indices
/// are shuffled with `seed` and `round(count · val_fraction)` of them go to validation. Both
/// subsets list their indices in ascending order. Deterministic in `(ds labels, val_fraction,
/// seed)`.
///
/// # Errors
/// [`Error::Config`] when `val_fraction` is not in `[0, 1]`.
pub fn split(ds: Arc<dyn Dataset>, val_fraction: f64, seed: u64) -> Result<(Subset, Subset)> {
    if !(0.0..=1.0).contains(&val_fraction) {
        return Err(Error::Config(format!(
            "validation fraction must be in [0, 1], got {val_fraction}"
        )));
    }
    let mut by_class: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..ds.len() {
        by_class.entry(ds.label(i)).or_default().push(i);
    }
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for (label, mut idx) in by_class {
        // A stream per class, separate from the loader's (seed, epoch, position) streams.
        let mut rng = SampleRng::new(seed, 0x5311_7000_0000_0000, label as u64);
        rng.shuffle(&mut idx);
        let n_val = ((idx.len() as f64) * val_fraction).round() as usize;
        val.extend_from_slice(&idx[..n_val]);
        train.extend_from_slice(&idx[n_val..]);
    }
    train.sort_unstable();
    val.sort_unstable();
    Ok((
        Subset {
            inner: ds.clone(),
            indices: train,
        },
        Subset {
            inner: ds,
            indices: val,
        },
    ))
}
#[cfg(test)]
mod tests {
    use super::*;

    struct Labels(Vec<usize>, Vec<String>);
    impl Dataset for Labels {
        fn len(&self) -> usize {
            self.0.len()
        }
        fn classes(&self) -> &[String] {
            &self.1
        }
        fn label(&self, i: usize) -> usize {
            self.0[i]
        }
        fn load(&self, _: usize) -> Result<RgbImage> {
            Ok(RgbImage::new(1, 1))
        }
        fn describe(&self, i: usize) -> String {
            format!("#{i}")
        }
    }

    #[test]
    fn split_is_stratified_and_deterministic() {
        let labels: Vec<usize> = (0..100)
            .map(|i| {
                if i < 60 {
                    0
                } else if i < 90 {
                    1
                } else {
                    2
                }
            })
            .collect();
        let ds: Arc<dyn Dataset> =
            Arc::new(Labels(labels, vec!["a".into(), "b".into(), "c".into()]));
        let (tr, va) = split(ds.clone(), 0.2, 9).unwrap();
        let count = |s: &Subset, c| (0..s.len()).filter(|&i| s.label(i) == c).count();
        assert_eq!((count(&va, 0), count(&va, 1), count(&va, 2)), (12, 6, 2));
        assert_eq!(tr.len() + va.len(), 100);
        let mut all: Vec<usize> = tr.indices.iter().chain(&va.indices).copied().collect();
        all.sort();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        let (_, va2) = split(ds.clone(), 0.2, 9).unwrap();
        assert_eq!(va.indices, va2.indices);
        let (_, va3) = split(ds.clone(), 0.2, 10).unwrap();
        assert_ne!(va.indices, va3.indices);
        assert!(split(ds.clone(), 1.5, 0).is_err());
        assert!(split(ds.clone(), f64::NAN, 0).is_err());
        assert!(Subset::new(ds, vec![100]).is_err());
    }
}
