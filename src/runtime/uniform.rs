//! A small uniform buffer the host rewrites between steps (dropout seed, learning rate),
//! so prepared dispatches stay valid while the values they read change.

use std::marker::PhantomData;

use crate::runtime::device::Gpu;
use crate::runtime::gate::Gated;

pub struct Uniform<T: bytemuck::Pod> {
    buffer: Gated<wgpu::Buffer>,
    _value: PhantomData<T>,
}

impl<T: bytemuck::Pod> Uniform<T> {
    pub fn new(gpu: &Gpu, label: &str, value: &T) -> Self {
        let size = (std::mem::size_of::<T>().div_ceil(16).max(1) * 16) as u64;
        // Not `create_buffer_init`: on a lost device its mapping fails and wgpu panics. A
        // plain buffer plus a queued write degrades to an error the next `Gpu::check` returns.
        let _turn = gpu.exclusive();
        // Errors here surface at the next submission's scope (the buffer is used there).
        let buffer = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let buffer = Gated::new(buffer, &gpu.gate);
        gpu.queue
            .write_buffer(&buffer, 0, bytemuck::bytes_of(value));
        Self {
            buffer,
            _value: PhantomData,
        }
    }

    /// Takes effect for every submission after this call, in queue order.
    pub fn write(&self, gpu: &Gpu, value: &T) {
        let _turn = gpu.exclusive();
        gpu.queue
            .write_buffer(&self.buffer, 0, bytemuck::bytes_of(value));
    }

    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }
}
