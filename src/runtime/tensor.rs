//! Tensors: a storage buffer plus an NCHW shape and a name that errors can quote.
//!
//! A tensor may be larger than one storage binding may span (FC6's weight is 151 MB, and many
//! adapters, lavapipe among them, cap a binding at 128 MiB). The buffer is still one buffer;
//! ops that read such a tensor bind it in aligned slices (`Tensor::slice`) and dispatch once
//! per slice.
//!
//! A tensor may also be a view of part of a buffer: [`Tensor::arena`] lays many tensors back
//! to back in one buffer (the model's parameters, their gradients, the optimizer's state), so
//! that an elementwise update covers them all as one span ([`Tensor::span_to`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::runtime::device::Gpu;
use crate::runtime::gate::Gated;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    F32,
    U32,
}

/// Bytes of tensor storage alive on a device now, and the most there has been.
#[derive(Debug, Default)]
pub struct MemoryCounter {
    current: AtomicU64,
    peak: AtomicU64,
}

impl MemoryCounter {
    pub fn current(&self) -> u64 {
        self.current.load(Ordering::Relaxed)
    }

    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }

    /// Starts a new peak measurement from what is alive now.
    pub fn reset_peak(&self) {
        self.peak.store(self.current(), Ordering::Relaxed);
    }

    fn add(&self, bytes: u64) {
        let now = self.current.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }
}

/// A buffer that tells its device's counter when it is freed.
#[derive(Debug)]
struct TrackedBuffer {
    buffer: Gated<wgpu::Buffer>,
    counter: Arc<MemoryCounter>,
}

impl Drop for TrackedBuffer {
    fn drop(&mut self) {
        self.counter
            .current
            .fetch_sub(self.buffer.size(), Ordering::Relaxed);
    }
}

#[derive(Clone, Debug)]
pub struct Tensor {
    buffer: Arc<TrackedBuffer>,
    /// Where the tensor starts in the buffer, in elements (0 but for an arena's views).
    offset: usize,
    shape: Vec<usize>,
    dtype: DType,
    name: Arc<str>,
}

/// A contiguous range of a tensor's elements, as one binding.
#[derive(Clone, Copy, Debug)]
pub struct TensorSlice<'a> {
    pub tensor: &'a Tensor,
    pub start: usize,
    pub len: usize,
}

impl Tensor {
    /// A new zero-filled f32 tensor (wgpu zero-initialises buffers).
    pub fn zeros(gpu: &Gpu, name: &str, shape: &[usize]) -> Result<Self> {
        Self::new(gpu, name, shape, DType::F32)
    }

    pub fn zeros_u32(gpu: &Gpu, name: &str, shape: &[usize]) -> Result<Self> {
        Self::new(gpu, name, shape, DType::U32)
    }

    pub fn from_f32(gpu: &Gpu, name: &str, shape: &[usize], data: &[f32]) -> Result<Self> {
        let t = Self::zeros(gpu, name, shape)?;
        t.write_f32(gpu, data)?;
        Ok(t)
    }

    pub fn from_u32(gpu: &Gpu, name: &str, shape: &[usize], data: &[u32]) -> Result<Self> {
        let t = Self::zeros_u32(gpu, name, shape)?;
        t.write_u32(gpu, data)?;
        Ok(t)
    }

    fn new(gpu: &Gpu, name: &str, shape: &[usize], dtype: DType) -> Result<Self> {
        let numel: usize = shape.iter().product();
        // Zero-sized buffers cannot be bound; keep one element so every tensor can be.
        let bytes = (numel.max(1) * 4) as u64;
        let limit = gpu.limits().max_buffer_size;
        if bytes > limit {
            return Err(Error::BufferTooLarge {
                tensor: name.to_string(),
                bytes,
                limit,
            });
        }
        let buffer = gpu.scoped(&format!("creating tensor '{name}'"), || {
            Ok(gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(name),
                size: bytes,
                // INDIRECT: a u32 tensor may hold the workgroup counts of gated dispatches
                // (`Dispatch::indirect`).
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST
                    | wgpu::BufferUsages::INDIRECT,
                mapped_at_creation: false,
            }))
        })?;
        gpu.memory.add(bytes);
        Ok(Self {
            buffer: Arc::new(TrackedBuffer {
                buffer: Gated::new(buffer, &gpu.gate),
                counter: gpu.memory.clone(),
            }),
            offset: 0,
            shape: shape.to_vec(),
            dtype,
            name: name.into(),
        })
    }

    /// Zeroed f32 tensors of `tensors` (name, shape), back to back in as few buffers as the
    /// device's `max_buffer_size` allows, each starting at a binding-aligned offset so that it
    /// binds alone like any tensor. Tensors next to each other in the list are next to each
    /// other in memory (but for a change of buffer), with zeros between them.
    pub fn arena(gpu: &Gpu, name: &str, tensors: &[(String, Vec<usize>)]) -> Result<Vec<Self>> {
        let align = (gpu.binding_offset_alignment() / 4).max(1) as usize;
        let limit = gpu.limits().max_buffer_size;
        // (buffer index, offset) of each tensor; the elements each buffer needs.
        let mut places = Vec::with_capacity(tensors.len());
        let mut lengths = vec![0usize];
        for (tensor, shape) in tensors {
            let numel = shape.iter().product::<usize>().max(1);
            let bytes = (numel * 4) as u64;
            if bytes > limit {
                return Err(Error::BufferTooLarge {
                    tensor: tensor.clone(),
                    bytes,
                    limit,
                });
            }
            let mut at = lengths.last().unwrap().next_multiple_of(align);
            if ((at + numel) * 4) as u64 > limit {
                lengths.push(0);
                at = 0;
            }
            places.push((lengths.len() - 1, at));
            *lengths.last_mut().unwrap() = at + numel;
        }
        let buffers = lengths
            .iter()
            .enumerate()
            .map(|(i, &len)| Self::zeros(gpu, &format!("{name} {i}"), &[len]))
            .collect::<Result<Vec<_>>>()?;
        Ok(tensors
            .iter()
            .zip(places)
            .map(|((tensor, shape), (buffer, offset))| Self {
                offset,
                shape: shape.clone(),
                name: tensor.as_str().into(),
                ..buffers[buffer].clone()
            })
            .collect())
    }

    /// Where `self` starts after `base` in the same buffer, in elements; `None` in another
    /// buffer or before it.
    pub fn offset_after(&self, base: &Tensor) -> Option<usize> {
        Arc::ptr_eq(&self.buffer, &base.buffer)
            .then(|| self.offset.checked_sub(base.offset))
            .flatten()
    }

    /// The 1-D view from the start of `self` to the end of `last`, a tensor after it in the
    /// same buffer (an arena's tensors and the gaps between them).
    pub fn span_to(&self, last: &Tensor) -> Result<Self> {
        let len = last
            .offset_after(self)
            .map(|gap| gap + last.numel())
            .ok_or_else(|| Error::Shape {
                op: "span",
                what: format!(
                    "tensor '{}' does not follow '{}' in the same buffer",
                    last.name, self.name
                ),
            })?;
        Ok(Self {
            shape: vec![len],
            name: format!("{}..{}", self.name, last.name).into(),
            ..self.clone()
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The buffer the tensor lives in: all of it, or from [`Tensor::byte_offset`] on for a
    /// view of an arena.
    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer.buffer
    }

    /// Where the tensor starts in [`Tensor::buffer`], in bytes.
    pub fn byte_offset(&self) -> u64 {
        (self.offset * 4) as u64
    }

    /// The tensor's bytes in its buffer (a tensor of no elements holds one).
    pub fn byte_len(&self) -> u64 {
        (self.numel().max(1) * 4) as u64
    }

    /// The same storage under another shape with as many elements (flatten is this).
    pub fn reshape(&self, shape: &[usize]) -> Result<Self> {
        let numel: usize = shape.iter().product();
        if numel != self.numel() {
            return Err(Error::Shape {
                op: "reshape",
                what: format!(
                    "tensor '{}' of shape {:?} cannot be viewed as {:?}",
                    self.name, self.shape, shape
                ),
            });
        }
        Ok(Self {
            shape: shape.to_vec(),
            ..self.clone()
        })
    }

    /// The whole tensor as one binding.
    pub fn all(&self) -> TensorSlice<'_> {
        self.slice(0, self.numel())
    }

    pub fn slice(&self, start: usize, len: usize) -> TensorSlice<'_> {
        TensorSlice {
            tensor: self,
            start,
            len,
        }
    }

    fn check_len(&self, len: usize) -> Result<()> {
        if len != self.numel() {
            return Err(Error::Length {
                tensor: self.name.to_string(),
                expected: self.numel(),
                got: len,
            });
        }
        Ok(())
    }

    pub fn write_f32(&self, gpu: &Gpu, data: &[f32]) -> Result<()> {
        self.write_words(gpu, data)
    }

    pub fn write_u32(&self, gpu: &Gpu, data: &[u32]) -> Result<()> {
        self.write_words(gpu, data)
    }

    /// Queues a write of `data` at byte `offset` (both multiples of 4): part of a tensor used
    /// as raw storage (packed u8 images). It takes effect before the next submission.
    pub fn write_bytes_at(&self, gpu: &Gpu, offset: u64, data: &[u8]) -> Result<()> {
        let end = offset + data.len() as u64;
        if !offset.is_multiple_of(4)
            || !data.len().is_multiple_of(4)
            || end > (self.numel() * 4) as u64
        {
            return Err(Error::Shape {
                op: "write",
                what: format!(
                    "bytes {offset}..{end} of tensor '{}' ({} bytes): expected a range of whole \
                     words inside it",
                    self.name,
                    self.numel() * 4
                ),
            });
        }
        gpu.scoped(&format!("writing tensor '{}'", self.name), || {
            gpu.queue
                .write_buffer(self.buffer(), self.byte_offset() + offset, data);
            Ok(())
        })
    }

    /// Queues a write of the whole tensor; it takes effect before the next submission.
    fn write_words<T: bytemuck::Pod>(&self, gpu: &Gpu, data: &[T]) -> Result<()> {
        self.check_len(data.len())?;
        gpu.scoped(&format!("writing tensor '{}'", self.name), || {
            gpu.queue.write_buffer(
                self.buffer(),
                self.byte_offset(),
                bytemuck::cast_slice(data),
            );
            Ok(())
        })
    }

    pub fn read_f32(&self, gpu: &Gpu) -> Result<Vec<f32>> {
        Ok(bytemuck::cast_slice(&self.read_bytes(gpu)?).to_vec())
    }

    pub fn read_u32(&self, gpu: &Gpu) -> Result<Vec<u32>> {
        Ok(bytemuck::cast_slice(&self.read_bytes(gpu)?).to_vec())
    }

    /// Copies the tensor into a mappable staging buffer and waits for it. Used by tests,
    /// checkpoints and periodic metrics, never inside a recorded step.
    fn read_bytes(&self, gpu: &Gpu) -> Result<Vec<u8>> {
        Readback::start(gpu, &[self])?.finish(gpu)
    }
}

/// A readback under way: several tensors copied into one staging buffer by one submission,
/// waiting to be mapped. Started on several devices before any is finished, their copies run
/// at the same time; one buffer and one wait serve every tensor (the gradient exchange).
pub struct Readback {
    /// `None` when there is nothing to read.
    staging: Option<Gated<wgpu::Buffer>>,
    mapped: std::sync::mpsc::Receiver<std::result::Result<(), wgpu::BufferAsyncError>>,
    /// The tensors' names, for errors.
    what: String,
}

impl Readback {
    /// Records a copy of each tensor, back to back in one staging buffer, submits it and asks
    /// for the mapping. Nothing waits yet.
    pub fn start(gpu: &Gpu, tensors: &[&Tensor]) -> Result<Self> {
        let what = match tensors {
            [one] => one.name.to_string(),
            _ => format!("{} tensors", tensors.len()),
        };
        let bytes: u64 = tensors.iter().map(|t| (t.numel() * 4) as u64).sum();
        let (tx, mapped) = std::sync::mpsc::channel();
        if bytes == 0 {
            return Ok(Self {
                staging: None,
                mapped,
                what,
            });
        }
        // The gate is held to set the copy up and to read the mapping, not across the wait,
        // so other threads sharing a GL device take turns meanwhile.
        let staging = gpu.scoped(&format!("reading tensor '{what}'"), || {
            let staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback staging"),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let staging = Gated::new(staging, &gpu.gate);
            let mut encoder = gpu
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
            let mut offset = 0;
            for t in tensors {
                let size = (t.numel() * 4) as u64;
                if size > 0 {
                    encoder.copy_buffer_to_buffer(
                        t.buffer(),
                        t.byte_offset(),
                        &staging,
                        offset,
                        size,
                    );
                }
                offset += size;
            }
            gpu.queue.submit([encoder.finish()]);
            staging.map_async(wgpu::MapMode::Read, .., move |r| {
                let _ = tx.send(r);
            });
            Ok(staging)
        })?;
        Ok(Self {
            staging: Some(staging),
            mapped,
            what,
        })
    }

    /// Waits for the copies and returns the bytes, tensor after tensor.
    pub fn finish(self, gpu: &Gpu) -> Result<Vec<u8>> {
        let Some(staging) = self.staging else {
            return Ok(Vec::new());
        };
        let fail = |message: String| Error::Readback {
            tensor: self.what.clone(),
            message,
        };
        // A lost device stays a typed error, so callers can tell it from a bad read.
        gpu.wait().map_err(|e| match e {
            Error::DeviceLost { .. } => e,
            e => fail(e.to_string()),
        })?;
        self.mapped
            .recv()
            .map_err(|e| fail(e.to_string()))?
            .map_err(|e| fail(e.to_string()))?;
        let _turn = gpu.exclusive();
        let data = staging
            .get_mapped_range(..)
            .map_err(|e| fail(e.to_string()))?
            .to_vec();
        staging.unmap();
        Ok(data)
    }
}

impl TensorSlice<'_> {
    /// The byte range this slice binds, checked against the device's binding limits.
    pub(crate) fn binding(&self, gpu: &Gpu) -> Result<wgpu::BufferBinding<'_>> {
        let name = self.tensor.name();
        if self.start + self.len > self.tensor.numel().max(1) {
            return Err(Error::Shape {
                op: "bind",
                what: format!(
                    "slice {}..{} is outside tensor '{}' of {} elements",
                    self.start,
                    self.start + self.len,
                    name,
                    self.tensor.numel()
                ),
            });
        }
        let offset = self.tensor.byte_offset() + (self.start * 4) as u64;
        let size = (self.len.max(1) * 4) as u64;
        if size > gpu.max_binding_bytes() {
            return Err(Error::BindingTooLarge {
                tensor: name.to_string(),
                bytes: size,
                limit: gpu.max_binding_bytes(),
            });
        }
        if !offset.is_multiple_of(gpu.binding_offset_alignment()) {
            return Err(Error::Shape {
                op: "bind",
                what: format!(
                    "slice of tensor '{name}' starts at byte {offset}, not a multiple of {}",
                    gpu.binding_offset_alignment()
                ),
            });
        }
        Ok(wgpu::BufferBinding {
            buffer: self.tensor.buffer(),
            offset,
            size: wgpu::BufferSize::new(size),
        })
    }
}

/// Splits `rows` rows of `row_len` elements into runs that each fit one binding and start at
/// an aligned offset. Returns `(first_row, row_count)` pairs covering every row once.
pub fn binding_chunks(gpu: &Gpu, rows: usize, row_len: usize) -> Vec<(usize, usize)> {
    let row_bytes = (row_len.max(1) * 4) as u64;
    let align = gpu.binding_offset_alignment();
    // Rows per chunk must be a multiple of this so every chunk after the first is aligned.
    let step = (align / gcd(row_bytes, align)) as usize;
    let fit = (gpu.max_binding_bytes() / row_bytes) as usize;
    let per_chunk = ((fit / step) * step).max(step).min(rows.max(1));
    (0..rows)
        .step_by(per_chunk)
        .map(|first| (first, per_chunk.min(rows - first)))
        .collect()
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}
