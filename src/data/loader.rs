//! The prefetching loader: worker threads decode and augment whole batches ahead of the
//! training loop, a bounded window of `prefetch` batches, batches handed out in order.
//!
//! Everything random is a pure function of `(seed, epoch, position in the epoch)`: the
//! epoch's permutation comes from `SampleRng::new(seed, epoch, u64::MAX)` and sample
//! `position`'s augmentation from `SampleRng::new(seed, epoch, position)`. Which worker makes
//! which batch changes nothing, and starting at batch `k` (resume) gives exactly the batches an
//! uninterrupted run would have produced from `k` on.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use super::batch::{AugmentOn, Batch, GpuSample};
use super::dataset::{Dataset, DecodeMode};
use super::transforms::{Augment, SampleRng};
use crate::error::{Error, Result};

/// What to do with a sample that cannot be loaded (unreadable, corrupt, label out of range).
/// Written lowercase, as the flag takes it; checkpoints written before that (`"Stop"`) still read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnBadSample {
    /// `next_batch` returns the error (naming the file) and the loader ends.
    #[serde(alias = "Stop")]
    Stop,
    /// Drop the sample from its batch (the batch gets smaller) and record it in
    /// [`Loader::skipped`].
    #[serde(alias = "Skip")]
    Skip,
}

impl std::fmt::Display for OnBadSample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OnBadSample::Stop => "stop",
            OnBadSample::Skip => "skip",
        })
    }
}

impl std::str::FromStr for OnBadSample {
    type Err = Error;
    fn from_str(s: &str) -> Result<OnBadSample> {
        match s.to_ascii_lowercase().as_str() {
            "stop" => Ok(OnBadSample::Stop),
            "skip" => Ok(OnBadSample::Skip),
            _ => Err(Error::Config(format!(
                "--on-bad-image '{s}': expected 'stop' or 'skip'"
            ))),
        }
    }
}

/// Decoding threads by default: every core but one (left to the thread driving the GPU), at
/// least one.
pub fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .saturating_sub(1)
        .max(1)
}

/// Loader options.
#[derive(Clone, Debug, PartialEq)]
pub struct LoaderConfig {
    pub batch_size: usize,
    /// Shuffle each epoch (a permutation that is a pure function of `(seed, epoch)`).
    pub shuffle: bool,
    /// Leave out the last partial batch.
    pub drop_last: bool,
    pub augment: Augment,
    pub seed: u64,
    /// Decoding threads; 0 loads on the calling thread inside `next_batch`.
    pub workers: usize,
    /// How many batches may be ready or in the making at once, counting the one
    /// `next_batch` is waiting for (at least 1 is used). Workers beyond this number idle.
    pub prefetch: usize,
    pub on_bad_sample: OnBadSample,
    /// Where augmentation runs after decoding: what a [`Batch`] carries.
    pub augment_on: AugmentOn,
    /// Full-size or reduced-scale JPEG decoding.
    pub decode: DecodeMode,
}

impl LoaderConfig {
    /// Defaults: shuffle, keep the last partial batch, seed 0, [`default_workers`] (all cores
    /// but one), prefetch `max(workers, 2)`, stop on a bad sample, augmentation on the CPU,
    /// exact decoding.
    pub fn new(batch_size: usize, augment: Augment) -> LoaderConfig {
        let workers = default_workers();
        LoaderConfig {
            batch_size,
            shuffle: true,
            drop_last: false,
            augment,
            seed: 0,
            workers,
            prefetch: workers.max(2),
            on_bad_sample: OnBadSample::Stop,
            augment_on: AugmentOn::Cpu,
            decode: DecodeMode::Exact,
        }
    }
}

/// One augmented sample, as [`AugmentOn`] asks.
enum Sample {
    Tensor(Vec<f32>),
    Gpu(GpuSample),
}

/// A batch as a worker made it, with the samples it skipped.
type Made = Result<(Batch, Vec<String>)>;

enum Msg {
    Done(usize, Made),
    /// A worker thread is dying of a panic outside the per-sample guard.
    Died(String),
}

struct State {
    /// Next batch a worker may take.
    next_claim: usize,
    /// First batch the consumer has not taken yet; workers stay below `consumed + prefetch`.
    consumed: usize,
    stop: bool,
}

struct Shared {
    dataset: Arc<dyn Dataset>,
    config: LoaderConfig,
    epoch: u64,
    permutation: Vec<usize>,
    end: usize,
    state: Mutex<State>,
    wake: Condvar,
    /// Nanoseconds spent making batches, summed over the threads that made them.
    busy_nanos: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the counters half-updated.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stopped(&self) -> bool {
        self.lock().stop
    }

    /// Loads, checks and augments one sample. Never panics: a panic inside the decoder or a
    /// transform becomes an error naming the sample.
    fn sample(&self, position: usize) -> Result<(Sample, u32)> {
        let ds = &*self.dataset;
        let index = self.permutation[position];
        let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<(Sample, u32)> {
            let label = ds.label(index);
            if label >= ds.classes().len() {
                return Err(Error::File {
                    path: ds.describe(index),
                    message: format!(
                        "label {label} is out of range; expected < {} classes",
                        ds.classes().len()
                    ),
                });
            }
            let augment = &self.config.augment;
            let img = match self.config.decode {
                DecodeMode::Exact => ds.load(index)?,
                DecodeMode::Fast => ds.load_draft(index, augment.resize)?,
            };
            augment.check_input(img.width(), img.height())?;
            let mut rng = SampleRng::new(self.config.seed, self.epoch, position as u64);
            let sample = match self.config.augment_on {
                AugmentOn::Cpu => Sample::Tensor(augment.apply(&img, &mut rng)),
                AugmentOn::Gpu => Sample::Gpu(GpuSample::new(augment, img, &mut rng)),
            };
            Ok((sample, label as u32))
        }));
        match outcome {
            Ok(Ok(x)) => Ok(x),
            Ok(Err(e @ Error::File { .. })) => Err(e),
            // A size check's complaint is about this file, not the configuration.
            Ok(Err(Error::Config(message))) => Err(Error::File {
                path: ds.describe(index),
                message,
            }),
            Ok(Err(e)) => Err(Error::File {
                path: ds.describe(index),
                message: e.to_string(),
            }),
            Err(panic) => Err(Error::File {
                path: ds.describe(index),
                message: format!("loading this sample panicked: {}", panic_message(&*panic)),
            }),
        }
    }

    /// Makes batch `b`, counting the time in [`Shared::busy_nanos`]. Returns `None` when the
    /// loader is being dropped.
    fn make(&self, b: usize) -> Option<Made> {
        let t0 = Instant::now();
        let made = self.make_untimed(b);
        self.busy_nanos
            .fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
        made
    }

    fn make_untimed(&self, b: usize) -> Option<Made> {
        let cfg = &self.config;
        let start = b * cfg.batch_size;
        let stop = (start + cfg.batch_size).min(self.permutation.len());
        let mut images = Vec::new();
        let mut gpu = Vec::new();
        match cfg.augment_on {
            AugmentOn::Cpu => images.reserve((stop - start) * cfg.augment.output_len()),
            AugmentOn::Gpu => gpu.reserve(stop - start),
        }
        let mut labels = Vec::with_capacity(stop - start);
        let mut skipped = Vec::new();
        for position in start..stop {
            if self.stopped() {
                return None;
            }
            match self.sample(position) {
                Ok((sample, label)) => {
                    match sample {
                        Sample::Tensor(x) => images.extend_from_slice(&x),
                        Sample::Gpu(g) => gpu.push(g),
                    }
                    labels.push(label);
                }
                Err(e) => match cfg.on_bad_sample {
                    OnBadSample::Stop => return Some(Err(e)),
                    OnBadSample::Skip => skipped.push(e.to_string()),
                },
            }
        }
        let len = labels.len();
        Some(Ok((
            Batch {
                index: b,
                images,
                gpu,
                labels,
                len,
            },
            skipped,
        )))
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// Tells the consumer when a worker dies of a panic that escaped the per-sample guard, so
/// `next_batch` returns an error instead of waiting forever.
struct DeathNotice(Sender<Msg>);

impl Drop for DeathNotice {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.0.send(Msg::Died(
                "a data loader worker thread panicked".to_string(),
            ));
        }
    }
}

fn worker(shared: Arc<Shared>, tx: Sender<Msg>) {
    let _notice = DeathNotice(tx.clone());
    let prefetch = shared.config.prefetch.max(1);
    loop {
        let b = {
            let mut st = shared.lock();
            while !st.stop && st.next_claim < shared.end && st.next_claim >= st.consumed + prefetch
            {
                st = shared.wake.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            if st.stop || st.next_claim >= shared.end {
                return;
            }
            st.next_claim += 1;
            st.next_claim - 1
        };
        let Some(made) = shared.make(b) else { return };
        if tx.send(Msg::Done(b, made)).is_err() {
            return;
        }
    }
}

/// Batches of one epoch, made by worker threads ahead of use.
pub struct Loader {
    shared: Arc<Shared>,
    rx: Option<Receiver<Msg>>,
    threads: Vec<JoinHandle<()>>,
    /// Next batch `next_batch` returns.
    next_out: usize,
    /// Batches that arrived before their turn.
    pending: BTreeMap<usize, Made>,
    waited: Duration,
    skipped: Vec<String>,
}

impl Loader {
    /// Starts the workers for `epoch`, beginning at batch `start_batch` (for resume).
    ///
    /// # Errors
    /// [`Error::Config`] for a zero batch size, an invalid [`Augment`], a `start_batch`
    /// beyond the epoch, or when a thread cannot be started.
    pub fn new(
        dataset: Arc<dyn Dataset>,
        config: LoaderConfig,
        epoch: usize,
        start_batch: usize,
    ) -> Result<Loader> {
        if config.batch_size == 0 {
            return Err(Error::Config("loader batch size must be at least 1".into()));
        }
        config.augment.check()?;
        let n = dataset.len();
        let end = Self::batches_per_epoch(n, config.batch_size, config.drop_last);
        if start_batch > end {
            return Err(Error::Config(format!(
                "loader start batch {start_batch} is beyond the epoch's {end} batches"
            )));
        }
        let epoch = epoch as u64;
        let permutation = Self::permutation(n, config.shuffle, config.seed, epoch);
        let workers = config.workers;
        let shared = Arc::new(Shared {
            dataset,
            config,
            epoch,
            permutation,
            end,
            state: Mutex::new(State {
                next_claim: start_batch,
                consumed: start_batch,
                stop: false,
            }),
            wake: Condvar::new(),
            busy_nanos: AtomicU64::new(0),
        });
        let (tx, rx) = channel();
        let mut loader = Loader {
            shared: shared.clone(),
            rx: Some(rx),
            threads: Vec::new(),
            next_out: start_batch,
            pending: BTreeMap::new(),
            waited: Duration::ZERO,
            skipped: Vec::new(),
        };
        for i in 0..workers.min(end - start_batch) {
            let (shared, tx) = (shared.clone(), tx.clone());
            let handle = std::thread::Builder::new()
                .name(format!("data-loader-{i}"))
                .spawn(move || worker(shared, tx))
                .map_err(|e| Error::Config(format!("cannot start data loader thread: {e}")))?;
            loader.threads.push(handle);
        }
        Ok(loader)
    }

    /// Batches in an epoch of `dataset_len` samples.
    pub fn batches_per_epoch(dataset_len: usize, batch_size: usize, drop_last: bool) -> usize {
        if batch_size == 0 {
            0
        } else if drop_last {
            dataset_len / batch_size
        } else {
            dataset_len.div_ceil(batch_size)
        }
    }

    /// The order in which an epoch visits the dataset: identity, or a Fisher–Yates shuffle
    /// driven by `SampleRng::new(seed, epoch, u64::MAX)`.
    pub fn permutation(len: usize, shuffle: bool, seed: u64, epoch: u64) -> Vec<usize> {
        let mut p: Vec<usize> = (0..len).collect();
        if shuffle {
            SampleRng::new(seed, epoch, u64::MAX).shuffle(&mut p);
        }
        p
    }

    /// Batches in this loader's epoch (counting those before `start_batch`).
    pub fn batches(&self) -> usize {
        self.shared.end
    }

    /// The next batch, in order; blocks until it is ready. `None` at the end of the epoch.
    ///
    /// With [`OnBadSample::Skip`], a batch whose samples were all bad is passed over (the
    /// next batch's `index` shows the gap). With [`OnBadSample::Stop`], the first bad sample
    /// is returned as an error naming it, and the loader ends.
    ///
    /// # Errors
    /// The bad sample's error ([`Error::File`]), or [`Error::Config`] when a worker thread
    /// died.
    pub fn next_batch(&mut self) -> Option<Result<Batch>> {
        loop {
            if self.next_out >= self.shared.end {
                return None;
            }
            let b = self.next_out;
            let made = if self.threads.is_empty() {
                // No workers: load here; all of it is time the caller waits for data.
                let t0 = Instant::now();
                let made = self.shared.make(b);
                self.waited += t0.elapsed();
                made?
            } else {
                match self.receive(b) {
                    Ok(made) => made,
                    Err(e) => {
                        self.finish();
                        return Some(Err(e));
                    }
                }
            };
            self.next_out += 1;
            {
                let mut st = self.shared.lock();
                st.consumed = self.next_out;
            }
            self.shared.wake.notify_all();
            match made {
                Ok((batch, skipped)) => {
                    self.skipped.extend(skipped);
                    if batch.len > 0 {
                        return Some(Ok(batch));
                    }
                }
                Err(e) => {
                    self.finish();
                    return Some(Err(e));
                }
            }
        }
    }

    /// Waits for batch `b` from the workers.
    fn receive(&mut self, b: usize) -> Result<Made> {
        let t0 = Instant::now();
        let result = loop {
            if let Some(made) = self.pending.remove(&b) {
                break Ok(made);
            }
            let Some(rx) = &self.rx else {
                break Err(Error::Config("data loader already stopped".into()));
            };
            match rx.recv() {
                Ok(Msg::Done(i, made)) => {
                    self.pending.insert(i, made);
                }
                Ok(Msg::Died(message)) => break Err(Error::Config(message)),
                Err(_) => {
                    break Err(Error::Config(format!(
                        "data loader workers stopped before producing batch {b}"
                    )))
                }
            }
        };
        self.waited += t0.elapsed();
        result
    }

    /// Total time `next_batch` spent blocked waiting for data (the GPU waiting for the CPU).
    pub fn wait_time(&self) -> Duration {
        self.waited
    }

    /// Thread time spent loading and augmenting so far, summed over the threads: images made
    /// divided by it is the loader's rate per core.
    pub fn busy_time(&self) -> Duration {
        Duration::from_nanos(self.shared.busy_nanos.load(Ordering::Relaxed))
    }

    /// `describe(): error` of every sample skipped so far, in epoch order.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// Stops the workers and ends the epoch.
    fn finish(&mut self) {
        self.next_out = self.shared.end;
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_all();
        // Dropping the receiver makes a worker's pending send fail, so it exits at once.
        self.rx = None;
        self.pending.clear();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Synthetic;
    use image::RgbImage;

    fn config(workers: usize) -> LoaderConfig {
        LoaderConfig {
            batch_size: 4,
            shuffle: true,
            drop_last: false,
            augment: Augment {
                image_size: 8,
                resize: 9,
                ..Augment::imagenet(8)
            },
            seed: 3,
            workers,
            prefetch: 2,
            on_bad_sample: OnBadSample::Stop,
            augment_on: AugmentOn::Cpu,
            decode: DecodeMode::Exact,
        }
    }

    fn all(mut l: Loader) -> Vec<Batch> {
        std::iter::from_fn(|| l.next_batch())
            .map(|b| b.unwrap())
            .collect()
    }

    #[test]
    fn batches_per_epoch_counts() {
        assert_eq!(Loader::batches_per_epoch(10, 4, false), 3);
        assert_eq!(Loader::batches_per_epoch(10, 4, true), 2);
        assert_eq!(Loader::batches_per_epoch(0, 4, false), 0);
        assert_eq!(Loader::batches_per_epoch(8, 4, false), 2);
    }

    #[test]
    fn same_batches_with_any_number_of_workers() {
        let ds: Arc<dyn Dataset> = Arc::new(Synthetic::new(18, 12, 0, 0));
        let a = all(Loader::new(ds.clone(), config(0), 1, 0).unwrap());
        let b = all(Loader::new(ds.clone(), config(3), 1, 0).unwrap());
        assert_eq!(a, b);
        assert_eq!(a.len(), 5);
        assert_eq!(a[4].len, 2);
        assert_eq!(a[4].images.len(), 2 * 3 * 64);
        let perm = Loader::permutation(18, true, 3, 1);
        assert_eq!(
            a[0].labels,
            perm[..4]
                .iter()
                .map(|&i| (i % 10) as u32)
                .collect::<Vec<_>>()
        );
        let other_epoch = all(Loader::new(ds, config(2), 2, 0).unwrap());
        assert_ne!(a, other_epoch);
    }

    struct Panicky;
    impl Dataset for Panicky {
        fn len(&self) -> usize {
            8
        }
        fn classes(&self) -> &[String] {
            static C: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
            C.get_or_init(|| vec!["a".into(), "b".into()])
        }
        fn label(&self, i: usize) -> usize {
            if i == 6 {
                7 // out of range
            } else {
                i % 2
            }
        }
        fn load(&self, i: usize) -> Result<RgbImage> {
            if i == 5 {
                panic!("decoder exploded");
            }
            Ok(RgbImage::new(10, 10))
        }
        fn describe(&self, i: usize) -> String {
            format!("panicky #{i}")
        }
    }

    #[test]
    fn panics_and_bad_labels_are_bad_samples() {
        let ds: Arc<dyn Dataset> = Arc::new(Panicky);
        let cfg = LoaderConfig {
            shuffle: false,
            on_bad_sample: OnBadSample::Skip,
            ..config(2)
        };
        let mut l = Loader::new(ds.clone(), cfg.clone(), 0, 0).unwrap();
        let b0 = l.next_batch().unwrap().unwrap();
        let b1 = l.next_batch().unwrap().unwrap();
        assert!(l.next_batch().is_none());
        assert_eq!((b0.len, b1.len), (4, 2));
        assert_eq!(l.skipped().len(), 2);
        assert!(
            l.skipped()[0].contains("panicky #5") && l.skipped()[0].contains("decoder exploded")
        );
        assert!(l.skipped()[1].contains("panicky #6") && l.skipped()[1].contains("label 7"));

        let mut l = Loader::new(
            ds,
            LoaderConfig {
                on_bad_sample: OnBadSample::Stop,
                ..cfg
            },
            0,
            0,
        )
        .unwrap();
        assert!(l.next_batch().unwrap().is_ok());
        let e = l.next_batch().unwrap().unwrap_err().to_string();
        assert!(e.contains("panicky #5"), "{e}");
        assert!(l.next_batch().is_none());
    }

    #[test]
    fn bad_config_is_an_error() {
        let ds: Arc<dyn Dataset> = Arc::new(Synthetic::new(8, 12, 0, 0));
        assert!(Loader::new(
            ds.clone(),
            LoaderConfig {
                batch_size: 0,
                ..config(1)
            },
            0,
            0
        )
        .is_err());
        assert!(Loader::new(ds.clone(), config(1), 0, 3).is_err());
        assert!(Loader::new(ds.clone(), config(1), 0, 2)
            .unwrap()
            .next_batch()
            .is_none());
        assert_eq!("skip".parse::<OnBadSample>().unwrap(), OnBadSample::Skip);
        assert!("maybe".parse::<OnBadSample>().is_err());
    }

    #[test]
    fn drop_mid_epoch_is_prompt() {
        let ds: Arc<dyn Dataset> = Arc::new(Synthetic::new(400, 32, 0, 0));
        let mut l = Loader::new(
            ds,
            LoaderConfig {
                prefetch: 4,
                ..config(2)
            },
            0,
            0,
        )
        .unwrap();
        l.next_batch().unwrap().unwrap();
        let t0 = Instant::now();
        drop(l);
        assert!(t0.elapsed() < Duration::from_secs(1));
    }
}
