//! Memory planning for a run: the training and evaluation plans at the configured batch size,
//! or, when they do not fit on the device, [`Error::OutOfMemory`] naming a batch that does.

use crate::error::{Error, Result};
use crate::model::{summary, AlexNet, Plan, PlanOptions};
use crate::runtime::Gpu;
use crate::train::trainer::TrainConfig;

/// The training and evaluation plans at `batch` (`config.batch_size`, or one device's share
/// of it), or, when they do not fit on the device, [`Error::OutOfMemory`] naming a batch size
/// that does.
pub(crate) fn plans_that_fit(
    gpu: &Gpu,
    model: &AlexNet,
    config: &TrainConfig,
    batch: usize,
) -> Result<(Plan, Plan)> {
    let plans = |batch: usize| {
        gpu.with_oom_scope(|| {
            let plan = |training| {
                let options = PlanOptions::new(batch, config.image_size, training);
                Plan::new(gpu, model, options)
            };
            Ok((plan(true)?, plan(false)?))
        })
    };
    let needed = plan_bytes(model, config, batch);
    let detail = match plans(batch) {
        (Ok(p), None) => return Ok(p),
        (
            Err(Error::BufferTooLarge {
                tensor,
                bytes,
                limit,
            }),
            _,
        ) => {
            // Every plan tensor grows linearly with the batch: the largest one per sample
            // says how many samples fit under the limit.
            let fits = (limit / largest_tensor_per_sample(model, config).max(1)) as usize;
            return Err(out_of_memory(
                batch,
                needed,
                format!("tensor '{tensor}' would need {bytes} bytes, more than one buffer may hold here ({limit} bytes)"),
                fits,
                false,
            ));
        }
        (Err(e), None) => return Err(e),
        (_, Some(oom)) => oom,
    };
    // The driver ran out of memory: halve until both plans fit, and name that size.
    let mut fits = batch / 2;
    while fits > 0 && !matches!(plans(fits), (Ok(_), None)) {
        fits /= 2;
    }
    Err(out_of_memory(
        batch,
        needed,
        format!("the driver reported: {detail}"),
        fits,
        true,
    ))
}

/// `fits` is the largest batch known to fit: every buffer under the limit (`probed` false),
/// or both plans actually allocated (`probed` true).
fn out_of_memory(
    batch: usize,
    needed_bytes: u64,
    detail: String,
    fits: usize,
    probed: bool,
) -> Error {
    let hint = match (fits, probed) {
        (0, _) => "Not even a batch of 1 fits: lower --image-size or --width.".to_string(),
        (n, true) => format!("A batch of {n} fits: use --batch-size {n}."),
        (n, false) => format!(
            "Use --batch-size {n} or less: larger batches need one buffer over the limit \
             (total memory may bind sooner)."
        ),
    };
    Error::OutOfMemory {
        batch,
        needed_bytes,
        detail,
        hint,
    }
}

/// Bytes per sample of the largest activation a plan allocates (the input or a layer output).
fn largest_tensor_per_sample(model: &AlexNet, config: &TrainConfig) -> u64 {
    let input = 3 * config.image_size * config.image_size;
    let largest = summary::summarize(&model.config, config.image_size)
        .map(|rows| {
            rows.iter()
                .map(|r| r.output.iter().product::<usize>())
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0);
    4 * input.max(largest) as u64
}

/// Rough bytes the two plans need at `batch`: every layer output, its gradient and the
/// forward state, per sample, plus the input. An estimate for messages, not an allocator.
fn plan_bytes(model: &AlexNet, config: &TrainConfig, batch: usize) -> u64 {
    let per_sample: usize = summary::summarize(&model.config, config.image_size)
        .map(|rows| {
            rows.iter()
                .map(|r| r.output.iter().product::<usize>())
                .sum()
        })
        .unwrap_or(0)
        + 3 * config.image_size * config.image_size;
    // Training keeps output, gradient and saved state; evaluation one more output.
    (per_sample as u64) * 4 * 4 * batch as u64
}
