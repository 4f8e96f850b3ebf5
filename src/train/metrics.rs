//! Per-epoch training metrics and their on-disk log.
//!
//! The log is JSON Lines: one [`EpochMetrics`] object a line, written with a single `write`
//! call and flushed as soon as the epoch ends, so a crash never loses a line already written.
//! A CSV twin (same path, extension `csv`) holds the same rows for spreadsheets and pandas.
//! The JSONL file is the source of truth: on resume the CSV is rebuilt from it.
//!
//! Non-finite numbers (a diverged loss) are written as JSON `null`, which is what JSON allows,
//! and read back as NaN; the CSV writes them as `NaN`, `inf` and `-inf`.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What one epoch of training measured.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Optimizer steps taken so far, over the whole run.
    pub step: u64,
    /// Learning rate at the end of the epoch.
    #[serde(with = "non_finite_as_null")]
    pub lr: f64,
    /// Mean training loss over the epoch.
    #[serde(with = "non_finite_as_null")]
    pub train_loss: f64,
    /// Mean validation loss.
    #[serde(with = "non_finite_as_null")]
    pub val_loss: f64,
    /// Validation top-1 accuracy, a fraction in 0..=1.
    #[serde(with = "non_finite_as_null")]
    pub val_top1: f64,
    /// Validation top-5 accuracy, a fraction in 0..=1.
    #[serde(with = "non_finite_as_null")]
    pub val_top5: f64,
    /// Top-1 accuracy on the training batches, a fraction in 0..=1.
    #[serde(with = "non_finite_as_null")]
    pub train_top1: f64,
    /// Training throughput.
    #[serde(with = "non_finite_as_null")]
    pub images_per_sec: f64,
    /// Seconds the GPU waited for the data loader this epoch.
    #[serde(with = "non_finite_as_null")]
    pub gpu_wait_secs: f64,
    /// Wall-clock seconds of the epoch.
    #[serde(with = "non_finite_as_null")]
    pub epoch_secs: f64,
    /// Samples the loader skipped (unreadable or corrupt images).
    pub skipped_samples: usize,
}

/// The CSV header; [`csv_row`] writes the fields in this order.
const CSV_HEADER: &str = "epoch,step,lr,train_loss,val_loss,val_top1,val_top5,train_top1,\
                          images_per_sec,gpu_wait_secs,epoch_secs,skipped_samples";

fn csv_row(m: &EpochMetrics) -> String {
    // `{}` on f64 prints the shortest text that parses back to the same value, and
    // NaN / inf / -inf as words pandas and spreadsheets understand.
    format!(
        "{},{},{},{},{},{},{},{},{},{},{},{}",
        m.epoch,
        m.step,
        m.lr,
        m.train_loss,
        m.val_loss,
        m.val_top1,
        m.val_top5,
        m.train_top1,
        m.images_per_sec,
        m.gpu_wait_secs,
        m.epoch_secs,
        m.skipped_samples
    )
}

/// The JSONL metrics log of a run, with its CSV twin.
pub struct MetricsLog {
    jsonl: File,
    jsonl_path: PathBuf,
    csv: File,
    csv_path: PathBuf,
}

impl MetricsLog {
    /// Starts a fresh log at `path` (JSONL) and `path.with_extension("csv")`, truncating both.
    /// Creates the parent directory if needed.
    ///
    /// # Errors
    /// [`Error::Config`] if `path` itself ends in `.csv` (its CSV twin would be the same file);
    /// [`Error::File`] naming the file that could not be created or written.
    pub fn create(path: &Path) -> Result<Self> {
        let csv_path = csv_twin(path)?;
        create_parent(path)?;
        let jsonl = File::create(path).map_err(|e| file_error(path, "cannot create", e))?;
        let mut csv =
            File::create(&csv_path).map_err(|e| file_error(&csv_path, "cannot create", e))?;
        write_line(&mut csv, &csv_path, CSV_HEADER)?;
        Ok(Self {
            jsonl,
            jsonl_path: path.to_path_buf(),
            csv,
            csv_path,
        })
    }

    /// Opens the log of a run being resumed: keeps the rows already in `path` and returns them,
    /// and appends after them. A missing file starts an empty log.
    ///
    /// A last line cut short by a crash (no trailing newline, not valid JSON) is dropped with a
    /// warning. The CSV twin is rewritten from the JSONL rows, so the two always agree.
    ///
    /// # Errors
    /// As [`MetricsLog::create`], and as [`read_metrics`] for a bad line before the last.
    pub fn append_to(path: &Path) -> Result<(Self, Vec<EpochMetrics>)> {
        Self::open_resumed(path, None)
    }

    /// Like [`MetricsLog::append_to`], but keeps only the rows with `epoch <= last_epoch` and
    /// removes the rest from the file: for resuming from a checkpoint older than the log's end,
    /// so the epochs that will be trained again are not logged twice.
    ///
    /// # Errors
    /// As [`MetricsLog::append_to`].
    pub fn resume_at(path: &Path, last_epoch: usize) -> Result<(Self, Vec<EpochMetrics>)> {
        Self::open_resumed(path, Some(last_epoch))
    }

    fn open_resumed(path: &Path, last_epoch: Option<usize>) -> Result<(Self, Vec<EpochMetrics>)> {
        let csv_path = csv_twin(path)?;
        if !path.exists() {
            return Ok((Self::create(path)?, Vec::new()));
        }
        let text = fs::read_to_string(path).map_err(|e| file_error(path, "cannot read", e))?;
        let (mut rows, torn) = parse_lines(path, &text, true)?;
        if torn {
            log::warn!(
                "{}: dropping the last line, cut short (a crash while it was written?)",
                path.display()
            );
        }
        let dropped = match last_epoch {
            Some(last) => {
                let before = rows.len();
                rows.retain(|m| m.epoch <= last);
                rows.len() != before
            }
            None => false,
        };
        // Rewrite the JSONL when a line must go or the last one lacks its newline; through a
        // temporary file and a rename, so a crash now leaves the old log or the new, never half.
        if torn || dropped || !(text.is_empty() || text.ends_with('\n')) {
            let mut body = String::new();
            for m in &rows {
                body.push_str(&to_json(path, m)?);
                body.push('\n');
            }
            crate::atomic_file::write(path, body.as_bytes())?;
        }
        let mut csv_body = String::from(CSV_HEADER);
        csv_body.push('\n');
        for m in &rows {
            csv_body.push_str(&csv_row(m));
            csv_body.push('\n');
        }
        crate::atomic_file::write(&csv_path, csv_body.as_bytes())?;

        let jsonl = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| file_error(path, "cannot open for appending", e))?;
        let csv = OpenOptions::new()
            .append(true)
            .open(&csv_path)
            .map_err(|e| file_error(&csv_path, "cannot open for appending", e))?;
        Ok((
            Self {
                jsonl,
                jsonl_path: path.to_path_buf(),
                csv,
                csv_path,
            },
            rows,
        ))
    }

    /// Appends one epoch's row to both files and flushes them.
    ///
    /// # Errors
    /// [`Error::File`] naming the file that could not be written.
    pub fn write(&mut self, m: &EpochMetrics) -> Result<()> {
        let json = to_json(&self.jsonl_path, m)?;
        write_line(&mut self.jsonl, &self.jsonl_path, &json)?;
        write_line(&mut self.csv, &self.csv_path, &csv_row(m))
    }

    /// The JSONL file this log writes.
    pub fn path(&self) -> &Path {
        &self.jsonl_path
    }

    /// The CSV twin this log writes.
    pub fn csv_path(&self) -> &Path {
        &self.csv_path
    }
}

/// Reads every row of a JSONL metrics log. Blank lines are skipped.
///
/// # Errors
/// [`Error::File`] naming the file if it cannot be read, or naming the file and the 1-based line
/// number of the first line that is not a valid [`EpochMetrics`] object.
pub fn read_metrics(path: &Path) -> Result<Vec<EpochMetrics>> {
    let text = fs::read_to_string(path).map_err(|e| file_error(path, "cannot read", e))?;
    Ok(parse_lines(path, &text, false)?.0)
}

/// Parses the JSONL text. With `allow_torn_tail`, a last line without a newline that does not
/// parse is dropped, and the returned flag says so.
fn parse_lines(
    path: &Path,
    text: &str,
    allow_torn_tail: bool,
) -> Result<(Vec<EpochMetrics>, bool)> {
    let mut rows = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<EpochMetrics>(line) {
            Ok(m) => rows.push(m),
            Err(_) if allow_torn_tail && i + 1 == lines.len() && !text.ends_with('\n') => {
                return Ok((rows, true));
            }
            Err(e) => {
                return Err(Error::File {
                    path: path.display().to_string(),
                    message: format!("line {}: not a metrics row: {e}", i + 1),
                })
            }
        }
    }
    Ok((rows, false))
}

fn csv_twin(path: &Path) -> Result<PathBuf> {
    let twin = path.with_extension("csv");
    if twin == path {
        return Err(Error::Config(format!(
            "metrics log {}: use a .jsonl path; its CSV twin is written next to it",
            path.display()
        )));
    }
    Ok(twin)
}

fn create_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            fs::create_dir_all(dir).map_err(|e| file_error(dir, "cannot create directory", e))
        }
        _ => Ok(()),
    }
}

fn to_json(path: &Path, m: &EpochMetrics) -> Result<String> {
    serde_json::to_string(m).map_err(|e| Error::File {
        path: path.display().to_string(),
        message: format!("cannot serialize epoch {}: {e}", m.epoch),
    })
}

/// One `write` call for the whole line, so a crash can cut at most the line being written.
fn write_line(file: &mut File, path: &Path, line: &str) -> Result<()> {
    let mut buf = String::with_capacity(line.len() + 1);
    buf.push_str(line);
    buf.push('\n');
    file.write_all(buf.as_bytes())
        .and_then(|()| file.flush())
        .map_err(|e| file_error(path, "cannot write", e))
}

fn file_error(path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::File {
        path: path.display().to_string(),
        message: format!("{what}: {e}"),
    }
}

/// Serde adapter: a non-finite f64 is written as `null` (JSON has no NaN) and `null` reads as NaN.
mod non_finite_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else {
            s.serialize_none()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("alexnet-metrics-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn row(epoch: usize) -> EpochMetrics {
        let e = epoch as f64;
        EpochMetrics {
            epoch,
            step: 1000 * epoch as u64,
            lr: 0.01 / e,
            train_loss: 6.9 / e,
            val_loss: 7.0 / e + 0.1,
            val_top1: 0.1 * e,
            val_top5: 0.25 * e,
            train_top1: 0.11 * e,
            images_per_sec: 1234.5,
            gpu_wait_secs: 0.25,
            epoch_secs: 100.0 + e,
            skipped_samples: epoch,
        }
    }

    #[test]
    fn round_trip_and_append() {
        let dir = scratch_dir("roundtrip");
        let path = dir.join("metrics.jsonl");
        let mut log = MetricsLog::create(&path).unwrap();
        for e in 1..=3 {
            log.write(&row(e)).unwrap();
        }
        drop(log);
        let expected: Vec<_> = (1..=3).map(row).collect();
        assert_eq!(read_metrics(&path).unwrap(), expected);

        let (mut log, earlier) = MetricsLog::append_to(&path).unwrap();
        assert_eq!(earlier, expected);
        log.write(&row(4)).unwrap();
        drop(log);
        let all: Vec<_> = (1..=4).map(row).collect();
        assert_eq!(read_metrics(&path).unwrap(), all);

        let csv = fs::read_to_string(dir.join("metrics.csv")).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 5, "header and 4 rows:\n{csv}");
        assert_eq!(lines[0], CSV_HEADER);
        let columns = CSV_HEADER.split(',').count();
        assert!(lines.iter().all(|l| l.split(',').count() == columns));
        assert!(lines[4].starts_with("4,4000,0.0025,"), "{}", lines[4]);

        // A fresh run truncates.
        let log = MetricsLog::create(&path).unwrap();
        drop(log);
        assert!(read_metrics(&path).unwrap().is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn append_to_missing_file_starts_empty() {
        let dir = scratch_dir("missing");
        let path = dir.join("sub").join("m.jsonl");
        let (mut log, earlier) = MetricsLog::append_to(&path).unwrap();
        assert!(earlier.is_empty());
        log.write(&row(1)).unwrap();
        assert_eq!(read_metrics(&path).unwrap(), vec![row(1)]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn resume_at_drops_later_epochs() {
        let dir = scratch_dir("resume_at");
        let path = dir.join("m.jsonl");
        let mut log = MetricsLog::create(&path).unwrap();
        for e in 1..=5 {
            log.write(&row(e)).unwrap();
        }
        drop(log);
        let (mut log, earlier) = MetricsLog::resume_at(&path, 3).unwrap();
        assert_eq!(earlier, (1..=3).map(row).collect::<Vec<_>>());
        log.write(&row(4)).unwrap();
        drop(log);
        assert_eq!(
            read_metrics(&path).unwrap(),
            (1..=4).map(row).collect::<Vec<_>>()
        );
        let csv = fs::read_to_string(dir.join("m.csv")).unwrap();
        assert_eq!(csv.lines().count(), 5);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_line_names_file_and_line() {
        let dir = scratch_dir("badline");
        let path = dir.join("m.jsonl");
        let good = serde_json::to_string(&row(1)).unwrap();
        fs::write(&path, format!("{good}\n\n{{\"epoch\": 2, oops\n{good}\n")).unwrap();
        let err = read_metrics(&path).unwrap_err().to_string();
        assert!(err.contains("m.jsonl"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        // Not the torn tail of a crash either, so resuming refuses it too.
        assert!(MetricsLog::append_to(&path).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn torn_last_line_is_dropped_on_resume() {
        let dir = scratch_dir("torn");
        let path = dir.join("m.jsonl");
        let good = serde_json::to_string(&row(1)).unwrap();
        fs::write(&path, format!("{good}\n{}", &good[..20])).unwrap();
        assert!(read_metrics(&path).is_err());
        let (mut log, earlier) = MetricsLog::append_to(&path).unwrap();
        assert_eq!(earlier, vec![row(1)]);
        log.write(&row(2)).unwrap();
        assert_eq!(read_metrics(&path).unwrap(), vec![row(1), row(2)]);
        fs::remove_dir_all(&dir).unwrap();
    }

    /// Every f64 comes back bit for bit, as the experiment runner compares a run read back
    /// with one kept in memory: serde_json's default parser can be an ulp off on 17-digit
    /// numbers (2.5607497692108154, an f32 loss widened, came back as 2.560749769210815), so
    /// the crate is built with its `float_roundtrip` feature. Checked here on the f32 values
    /// around that loss and on random f64 bit patterns.
    #[test]
    fn every_value_reads_back_bit_for_bit() {
        let dir = scratch_dir("bits");
        let path = dir.join("m.jsonl");
        let mut log = MetricsLog::create(&path).unwrap();
        let widened = 2.560_749_8_f32;
        let mut values: Vec<f64> = (0..400u32)
            .map(|i| f64::from(f32::from_bits(widened.to_bits() - 200 + i)))
            .collect();
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        values.extend((0..400).map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Finite values of every magnitude: exponent bits kept below all-ones.
            f64::from_bits(state & !(0x400u64 << 52))
        }));
        let rows: Vec<EpochMetrics> = values
            .iter()
            .enumerate()
            .map(|(i, &v)| EpochMetrics {
                val_loss: v,
                ..row(i + 1)
            })
            .collect();
        for r in &rows {
            log.write(r).unwrap();
        }
        drop(log);
        let back = read_metrics(&path).unwrap();
        for (r, b) in rows.iter().zip(&back) {
            assert_eq!(
                r.val_loss.to_bits(),
                b.val_loss.to_bits(),
                "{} came back as {}",
                r.val_loss,
                b.val_loss
            );
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn non_finite_values_survive_as_nan() {
        let dir = scratch_dir("nan");
        let path = dir.join("m.jsonl");
        let mut m = row(1);
        m.train_loss = f64::NAN;
        m.val_loss = f64::INFINITY;
        let mut log = MetricsLog::create(&path).unwrap();
        log.write(&m).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"train_loss\":null"), "{text}");
        let back = read_metrics(&path).unwrap();
        assert!(back[0].train_loss.is_nan() && back[0].val_loss.is_nan());
        assert_eq!(back[0].val_top1, m.val_top1);
        let csv = fs::read_to_string(dir.join("m.csv")).unwrap();
        assert!(csv.contains(",NaN,inf,"), "{csv}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn csv_path_is_refused() {
        assert!(matches!(
            MetricsLog::create(Path::new("/tmp/x.csv")),
            Err(Error::Config(_))
        ));
    }
}
