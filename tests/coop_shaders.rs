//! The cooperative-matrix GEMM's shaders through naga, as wgpu compiles them on an adapter with
//! matrix units: validated with the capabilities the device features give, override constants
//! resolved with the values the host passes (`GemmCoop::constants`), and every entry point
//! written as SPIR-V (Vulkan) and, for the 8 × 8 configurations (f32, and f16 with f32 sums),
//! MSL (Metal). No adapter here has cooperative matrices, so this is what shows the kernel
//! compiles; whether it computes the right numbers is tests/ops/coop.rs's, where an adapter
//! runs it.
//!
//! Not written: HLSL (naga 30's HLSL writer has no cooperative matrices — it panics on a
//! cooperative store — and wgpu offers none on DX12), and MSL for 16 × 16 (naga writes Metal
//! types `simdgroup_half16x16`/`simdgroup_float16x16`, which Metal does not have: Metal lists
//! only 8 × 8, so the 16 × 16 configuration never runs there; the test below shows the writer
//! names them rather than rejecting the module).

mod common;

use alexnet_wgpu::ops::{GemmCoop, Shader};
use naga::back::{msl, spv};
use naga::valid::{Capabilities, ModuleInfo, ValidationFlags, Validator};

const ENTRY_POINTS: [&str; 3] = [
    "gemm_forward",
    "gemm_backward_input",
    "gemm_backward_weight",
];

/// The naga capabilities wgpu derives from the features the shader needs.
fn capabilities(shader: Shader) -> Capabilities {
    common::naga_capabilities(shader.features())
}

fn parse(shader: Shader) -> naga::Module {
    let source = shader.source();
    naga::front::wgsl::parse_str(source).unwrap_or_else(|e| {
        panic!(
            "{}",
            e.emit_to_string_with_path(source, &format!("{:?}", shader.files()))
        )
    })
}

fn validate(module: &naga::Module, caps: Capabilities) -> Result<ModuleInfo, String> {
    Validator::new(ValidationFlags::all(), caps)
        .validate(module)
        .map_err(|e| format!("{e:?}"))
}

/// The module and its info for one entry point with the host's override constants, as wgpu
/// processes them before a backend writes the entry point.
fn resolved(coop: GemmCoop, entry: &str) -> (naga::Module, ModuleInfo) {
    let shader = coop.shader();
    let module = parse(shader);
    let info = validate(&module, capabilities(shader))
        .unwrap_or_else(|e| panic!("{}: naga validation failed: {e}", shader.name()));
    let constants: naga::back::PipelineConstants = coop
        .constants()
        .iter()
        .map(|&(name, value)| (name.to_string(), value))
        .collect();
    let (module, info) = naga::back::pipeline_constants::process_overrides(
        &module,
        &info,
        Some((naga::ShaderStage::Compute, entry)),
        &constants,
    )
    .unwrap_or_else(|e| panic!("{}:{entry}: override constants: {e:?}", shader.name()));
    (module.into_owned(), info.into_owned())
}

#[test]
fn coop_gemm_needs_the_cooperative_matrix_capability_and_validates_with_it() {
    for coop in GemmCoop::ALL {
        let shader = coop.shader();
        let module = parse(shader);
        let without = capabilities(shader) - Capabilities::COOPERATIVE_MATRIX;
        assert!(
            validate(&module, without).is_err(),
            "{}: validated without COOPERATIVE_MATRIX",
            shader.name()
        );
        validate(&module, capabilities(shader))
            .unwrap_or_else(|e| panic!("{}: {e}", shader.name()));
        let entries: Vec<&str> = module
            .entry_points
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(entries, ENTRY_POINTS, "{}", shader.name());
    }
}

#[test]
fn coop_gemm_writes_spirv_for_every_entry_point_as_wgpu_compiles_it() {
    for coop in GemmCoop::ALL {
        for entry in ENTRY_POINTS {
            let what = format!("{}:{entry}", coop.shader().name());
            let (module, info) = resolved(coop, entry);
            // As wgpu's Vulkan backend sets it up on a Vulkan 1.3 device: SPIR-V 1.6, indices
            // clamped (a clamped cooperative load stays one instruction; a skipped one would sit
            // in a branch).
            let restrict = naga::proc::BoundsCheckPolicy::Restrict;
            let options = spv::Options {
                lang_version: (1, 6),
                bounds_check_policies: naga::proc::BoundsCheckPolicies {
                    index: restrict,
                    buffer: restrict,
                    image_load: restrict,
                    binding_array: naga::proc::BoundsCheckPolicy::Unchecked,
                },
                ..Default::default()
            };
            let pipeline = spv::PipelineOptions {
                shader_stage: naga::ShaderStage::Compute,
                entry_point: entry.to_string(),
            };
            let words = spv::write_vec(&module, &info, &options, Some(&pipeline))
                .unwrap_or_else(|e| panic!("{what}: SPIR-V: {e:?}"));
            let ops = instructions(&words);
            assert!(
                ops.contains(&(OP_CAPABILITY, Some(CAPABILITY_COOPERATIVE_MATRIX))),
                "{what}: SPIR-V without the CooperativeMatrixKHR capability"
            );
            for op in [OP_COOP_LOAD, OP_COOP_STORE, OP_COOP_MUL_ADD] {
                assert!(
                    ops.iter().any(|&(o, _)| o == op),
                    "{what}: SPIR-V without opcode {op}"
                );
            }
            eprintln!("{what}: SPIR-V 1.6, {} words", words.len());
        }
    }
}

const OP_CAPABILITY: u32 = 17;
const CAPABILITY_COOPERATIVE_MATRIX: u32 = 6022;
const OP_COOP_LOAD: u32 = 4457;
const OP_COOP_STORE: u32 = 4458;
const OP_COOP_MUL_ADD: u32 = 4459;

/// Each instruction of a SPIR-V module as (opcode, first operand).
fn instructions(words: &[u32]) -> Vec<(u32, Option<u32>)> {
    let mut out = Vec::new();
    let mut at = 5; // past the header
    while at < words.len() {
        let count = (words[at] >> 16) as usize;
        assert!(count > 0, "malformed SPIR-V at word {at}");
        out.push((words[at] & 0xffff, words.get(at + 1).copied()));
        at += count;
    }
    out
}

fn write_msl(coop: GemmCoop, entry: &str) -> Result<String, String> {
    let (module, info) = resolved(coop, entry);
    let options = msl::Options {
        // Metal's simdgroup matrices need MSL 2.3; wgpu offers the feature from there on.
        lang_version: (2, 3),
        ..Default::default()
    };
    let pipeline = msl::PipelineOptions {
        entry_point: Some((naga::ShaderStage::Compute, entry.to_string())),
        ..Default::default()
    };
    msl::write_string(&module, &info, &options, &pipeline)
        .map(|(text, _)| text)
        .map_err(|e| format!("{e:?}"))
}

#[test]
fn coop_gemm_8x8_configurations_write_msl_with_simdgroup_matrices() {
    for (coop, a_type) in [
        (GemmCoop::F32x8, "simdgroup_float8x8"),
        (GemmCoop::F16x8, "simdgroup_half8x8"),
    ] {
        let name = coop.shader().name();
        for entry in ENTRY_POINTS {
            let metal =
                write_msl(coop, entry).unwrap_or_else(|e| panic!("{name}:{entry}: MSL: {e}"));
            for expected in [
                "kernel void",
                a_type,
                "simdgroup_float8x8",
                "simdgroup_load(",
                "simdgroup_multiply_accumulate(",
                "simdgroup_store(",
                "[[simdgroup_index_in_threadgroup]]",
                "[[simdgroups_per_threadgroup]]",
            ] {
                assert!(
                    metal.contains(expected),
                    "{name}:{entry}: MSL without {expected}"
                );
            }
        }
    }
}

/// What the MSL writer does with the 16 × 16 configuration: it accepts it and names 16 × 16
/// simdgroup types that Metal lacks, which is why that configuration is Vulkan's only (the
/// host uses it only where the adapter lists 16 × 16 f16 → f32, which Metal never does).
#[test]
fn coop_gemm_f16_16x16_msl_names_types_metal_lacks() {
    let metal = write_msl(GemmCoop::F16x16, "gemm_forward")
        .unwrap_or_else(|e| panic!("gemm_coop_f16: MSL: {e}"));
    assert!(metal.contains("simdgroup_half16x16") && metal.contains("simdgroup_float16x16"));
    // Below MSL 2.3 the writer refuses cooperative matrices outright.
    let (module, info) = resolved(GemmCoop::F32x8, "gemm_forward");
    let old = msl::Options {
        lang_version: (2, 2),
        ..Default::default()
    };
    let pipeline = msl::PipelineOptions {
        entry_point: Some((naga::ShaderStage::Compute, "gemm_forward".to_string())),
        ..Default::default()
    };
    assert!(msl::write_string(&module, &info, &old, &pipeline).is_err());
}
