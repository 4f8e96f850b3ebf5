//! The weights/checkpoint loader on arbitrary bytes: `weights::parse` (safetensors header,
//! dtypes, shapes, conversion to f32) and the checkpoint's training-state JSON. Everything
//! after that needs a GPU and is covered by tests/reliability/.
#![no_main]

use std::path::Path;

use alexnet_wgpu::model::weights;
use alexnet_wgpu::train::checkpoint::CheckpointState;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok((tensors, metadata)) = weights::parse(Path::new("fuzz.safetensors"), data) else {
        return;
    };
    for (shape, values) in tensors.values() {
        assert_eq!(shape.iter().product::<usize>(), values.len());
    }
    if let Some(json) = metadata.get("alexnet_wgpu.checkpoint") {
        let _ = serde_json::from_str::<CheckpointState>(json);
    }
});
