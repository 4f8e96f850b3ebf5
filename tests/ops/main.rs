//! Every op, forward and backward, against the CPU reference (f64), central finite
//! differences of its own shader forward, and PyTorch's float64 results
//! (`tests/fixtures`, made by `tools/gen_fixtures.py`). One module per shader file.

#[path = "../common/mod.rs"]
mod common;

mod activation;
mod adam;
mod adaptive_avg_pool;
mod augment;
mod avg_pool;
mod batch_norm;
mod conv2d;
mod coop;
mod cross_entropy;
mod dropout;
mod finite;
mod gemm_direct;
mod linear;
mod lrn;
mod max_pool;
mod mixed;
mod relu;
mod sgd;
