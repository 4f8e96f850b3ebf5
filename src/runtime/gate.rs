//! One way in to a device whose backend cannot be used from several threads at once.
//!
//! wgpu's GL backend keeps one GL context per adapter behind a lock that gives up with a panic
//! ("Could not lock adapter context. This is most-likely a deadlock.") when it cannot take it
//! within 6 s (1 s with WGL on Windows). Work that legitimately holds the context longer —
//! compiling a large shader on a slow driver with a cold shader cache, or a submission that a
//! CPU driver such as llvmpipe executes before returning — makes any other thread using the
//! same device panic, even one only dropping a buffer; a panic inside a destructor then aborts
//! the process. So every call this library makes on a GL device first passes this gate:
//! threads queue here, without a timeout, and never contend for wgpu's lock. Other backends
//! are free-threaded, and their gate is open (no lock at all).
//!
//! The gate is reentrant, so a gated operation may call another (creating a tensor inside an
//! out-of-memory scope, dropping a staging buffer inside a readback).

use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::sync::Arc;

use parking_lot::{ReentrantMutex, ReentrantMutexGuard};

/// Serialises this library's use of one device where the backend needs it.
#[derive(Debug, Default)]
pub struct DeviceGate {
    lock: Option<ReentrantMutex<()>>,
}

/// Proof of passage: hold it for as long as the device is in use.
#[must_use = "the gate closes again when the guard is dropped"]
pub struct GateGuard<'a> {
    _guard: Option<ReentrantMutexGuard<'a, ()>>,
}

impl DeviceGate {
    /// A closed gate (one thread at a time) for GL, an open one for every other backend.
    pub fn for_backend(backend: wgpu::Backend) -> Self {
        Self {
            lock: (backend == wgpu::Backend::Gl).then(ReentrantMutex::default),
        }
    }

    /// Waits for the device to be free (on GL) and holds it until the guard drops.
    pub fn enter(&self) -> GateGuard<'_> {
        GateGuard {
            _guard: self.lock.as_ref().map(ReentrantMutex::lock),
        }
    }
}

/// A wgpu resource whose destruction also passes the gate: dropping a GL buffer takes the
/// GL context's lock.
#[derive(Debug)]
pub struct Gated<T> {
    inner: ManuallyDrop<T>,
    gate: Arc<DeviceGate>,
}

impl<T> Gated<T> {
    pub fn new(inner: T, gate: &Arc<DeviceGate>) -> Self {
        Self {
            inner: ManuallyDrop::new(inner),
            gate: gate.clone(),
        }
    }
}

impl<T> Deref for Gated<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T> Drop for Gated<T> {
    fn drop(&mut self) {
        let _turn = self.gate.enter();
        // SAFETY: `inner` is dropped exactly once, here, and never used afterwards.
        unsafe { ManuallyDrop::drop(&mut self.inner) };
    }
}
