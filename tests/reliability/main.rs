//! Issue 7, "Nothing lost, nothing silent": every bad input gets an error naming the file,
//! tensor or flag and what was expected; NaN/Inf, device loss, out-of-memory and kills during
//! a checkpoint write are survived; memory stays flat and runs are reproducible; the loaders
//! never panic on garbage. Inputs are generated into temporary folders by the tests.
//!
//! One module per kind of failure; `support` holds the helpers they share.

#[path = "../common/mod.rs"]
mod common;
mod support;

mod datasets;
mod device;
mod flags;
mod fuzz;
mod images;
mod interrupts;
mod long_runs;
mod non_finite;
mod weight_files;
