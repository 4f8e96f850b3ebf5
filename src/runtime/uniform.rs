//! A small uniform buffer the host rewrites between steps (dropout seed, learning rate),
//! so prepared dispatches stay valid while the values they read change.

use std::marker::PhantomData;

use wgpu::util::DeviceExt;

use crate::runtime::device::Gpu;

pub struct Uniform<T: bytemuck::Pod> {
    buffer: wgpu::Buffer,
    _value: PhantomData<T>,
}

impl<T: bytemuck::Pod> Uniform<T> {
    pub fn new(gpu: &Gpu, label: &str, value: &T) -> Self {
        let mut bytes = bytemuck::bytes_of(value).to_vec();
        bytes.resize(bytes.len().div_ceil(16).max(1) * 16, 0);
        let buffer = gpu
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: &bytes,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            });
        Self {
            buffer,
            _value: PhantomData,
        }
    }

    /// Takes effect for every submission after this call, in queue order.
    pub fn write(&self, gpu: &Gpu, value: &T) {
        gpu.queue
            .write_buffer(&self.buffer, 0, bytemuck::bytes_of(value));
    }

    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }
}
