//! The model: AlexNet's layer list, its parameters, and the programs (forward, backward,
//! update) planned once for a batch size and replayed every step.

pub mod alexnet;
pub mod finetune;
pub mod init;
pub mod layers;
pub mod plan;
pub mod summary;
pub mod weights;

pub use alexnet::{Activation, AlexNet, AlexNetConfig, Arch, Buffer, Norm, Param, Pool};
pub use init::Init;
pub use layers::{Layer, LayerKind};
pub use plan::{Plan, PlanOptions};
