//! The plain CPU reference lives in the library (`alexnet_wgpu::reference`), where
//! `alexnet selftest` uses it too; the tests reach it under its old name.

pub use alexnet_wgpu::reference::*;
