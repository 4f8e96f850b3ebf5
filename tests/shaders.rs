//! Cross-backend shader check: every shader as the runtime compiles it (its file after the
//! snippets the loader prepends) is parsed and validated by naga and each entry point is
//! written out as SPIR-V (Vulkan), MSL (Metal) and HLSL (DX12) — the way wgpu compiles it, one
//! entry point at a time with the override constants resolved — so a shader that would break
//! on a Mac or on Windows fails here. Files are discovered, not listed: each is a shader or a
//! snippet some shader includes, and the snippets are validated through those shaders. A
//! shader that needs device features (the direct GEMM's subgroup form) is validated with the
//! capabilities they give; the cooperative-matrix GEMM, which has no DX12 path, has its own
//! checks in tests/coop_shaders.rs.

mod common;

use std::path::PathBuf;

use alexnet_wgpu::ops::Shader;
use alexnet_wgpu::runtime::WORKGROUP_SIZE;
use naga::back::{hlsl, msl, spv};
use naga::valid::{Capabilities, ValidationFlags, Validator};

fn shader_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wgsl"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no shaders found in {}", dir.display());
    files
}

fn file_name(path: &std::path::Path) -> String {
    path.file_stem().unwrap().to_string_lossy().to_string()
}

fn read_shader_file(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("shaders/{name}.wgsl"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// naga's validation with the capabilities the shader's device features give (none for most).
fn validate(module: &naga::Module, what: &str, caps: Capabilities) -> naga::valid::ModuleInfo {
    Validator::new(ValidationFlags::all(), caps)
        .validate(module)
        .unwrap_or_else(|e| panic!("{what}: naga validation failed: {e:?}"))
}

#[test]
fn every_shader_file_opens_with_its_header_comment() {
    for path in shader_files() {
        let name = file_name(&path);
        assert!(
            read_shader_file(&name).starts_with(&format!("// {name}.wgsl — ")),
            "{name}.wgsl must open with a header comment giving its math and bindings"
        );
    }
}

#[test]
fn every_shader_validates_and_translates_to_spirv_msl_and_hlsl() {
    let mut entry_points = 0;
    for shader in Shader::ALL {
        let name = shader.name();
        let features = shader.features();
        if features.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX) {
            eprintln!("{name}.wgsl: needs {features:?}; checked in tests/coop_shaders.rs instead");
            continue;
        }
        let source = shader.source();
        let label = format!("{name}.wgsl from {:?}", shader.files());
        let module = naga::front::wgsl::parse_str(source)
            .unwrap_or_else(|e| panic!("{}", e.emit_to_string_with_path(source, &label)));
        let info = validate(&module, name, common::naga_capabilities(features));
        // Resolve the workgroup-size override where a shader declares one, as the runtime does.
        let mut constants = naga::back::PipelineConstants::default();
        if module
            .overrides
            .iter()
            .any(|(_, o)| o.name.as_deref() == Some("WG"))
        {
            constants.insert("WG".to_string(), f64::from(WORKGROUP_SIZE));
        }
        assert!(
            !module.entry_points.is_empty(),
            "{name}.wgsl has no entry point"
        );
        for ep in &module.entry_points {
            let what = format!("{name}.wgsl:{}", ep.name);
            let stage = (naga::ShaderStage::Compute, ep.name.as_str());
            let (module, info) = naga::back::pipeline_constants::process_overrides(
                &module,
                &info,
                Some(stage),
                &constants,
            )
            .unwrap_or_else(|e| panic!("{what}: override constants: {e:?}"));
            let owned = |s: &str| Some((naga::ShaderStage::Compute, s.to_string()));

            let spv_options = spv::PipelineOptions {
                shader_stage: naga::ShaderStage::Compute,
                entry_point: ep.name.clone(),
            };
            let words =
                spv::write_vec(&module, &info, &spv::Options::default(), Some(&spv_options))
                    .unwrap_or_else(|e| panic!("{what}: SPIR-V: {e:?}"));
            assert!(words.len() > 5, "{what}: empty SPIR-V");

            let msl_options = msl::PipelineOptions {
                entry_point: owned(&ep.name),
                ..Default::default()
            };
            let (metal, _) =
                msl::write_string(&module, &info, &msl::Options::default(), &msl_options)
                    .unwrap_or_else(|e| panic!("{what}: MSL: {e:?}"));
            assert!(
                metal.contains("kernel"),
                "{what}: MSL has no kernel function"
            );

            // wgpu's DX12 backend passes num_workgroups through a constant buffer.
            let hlsl_options = hlsl::Options {
                special_constants_binding: Some(hlsl::BindTarget::default()),
                ..Default::default()
            };
            let hlsl_pipeline = hlsl::PipelineOptions {
                entry_point: owned(&ep.name),
            };
            let mut text = String::new();
            hlsl::Writer::new(&mut text, &hlsl_options, &hlsl_pipeline)
                .write(&module, &info, None)
                .unwrap_or_else(|e| panic!("{what}: HLSL: {e:?}"));
            assert!(
                text.contains("[numthreads("),
                "{what}: HLSL has no compute entry point"
            );
            entry_points += 1;
        }
        eprintln!(
            "{name}.wgsl: {} entry points translate to SPIR-V, MSL and HLSL",
            module.entry_points.len()
        );
    }
    eprintln!("{entry_points} entry points in all");
}

#[test]
fn every_shader_file_is_embedded_in_the_runtime_and_every_embedded_one_exists() {
    let on_disk: Vec<String> = shader_files().iter().map(|p| file_name(p)).collect();
    for name in &on_disk {
        assert!(
            Shader::ALL
                .iter()
                .any(|s| s.files().contains(&name.as_str())),
            "shaders/{name}.wgsl is neither an ops::Shader nor a snippet one includes"
        );
    }
    for shader in Shader::ALL {
        assert!(
            shader.files().contains(&shader.name()),
            "{} does not include its own file",
            shader.name()
        );
        let expected: String = shader
            .files()
            .iter()
            .map(|file| read_shader_file(file))
            .collect();
        assert_eq!(
            expected,
            shader.source(),
            "{} embeds a different source than shaders/{:?}.wgsl",
            shader.name(),
            shader.files()
        );
    }
}

/// Scalar slots of a Rust field: `(name, offset, scalar type)`, an array giving one slot per
/// element (`mean[0]`, ...).
fn rust_slots(layout: &alexnet_wgpu::ops::UniformLayout) -> Vec<(String, usize, String)> {
    let mut slots = Vec::new();
    for f in &layout.fields {
        match f.ty.strip_prefix('[').and_then(|t| t.split_once("; ")) {
            // Our arrays hold 32-bit scalars.
            Some((scalar, _)) => {
                for i in 0..f.size / 4 {
                    slots.push((format!("{}[{i}]", f.name), f.offset + 4 * i, scalar.into()));
                }
            }
            None => slots.push((f.name.to_string(), f.offset, f.ty.to_string())),
        }
    }
    slots
}

/// The same for a WGSL struct as naga lays it out (scalar members only, as ours are).
fn wgsl_slots(module: &naga::Module, name: &str) -> (Vec<(String, usize, String)>, usize) {
    let (members, span) = module
        .types
        .iter()
        .find_map(|(_, t)| match (&t.name, &t.inner) {
            (Some(n), naga::TypeInner::Struct { members, span }) if n == name => {
                Some((members.clone(), *span as usize))
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no struct {name}"));
    let slots = members
        .iter()
        .map(|m| {
            let ty = match module.types[m.ty].inner {
                naga::TypeInner::Scalar(naga::Scalar { kind, width: 4 }) => match kind {
                    naga::ScalarKind::Float => "f32",
                    naga::ScalarKind::Uint => "u32",
                    naga::ScalarKind::Sint => "i32",
                    other => panic!("{name}: unexpected scalar kind {other:?}"),
                },
                ref other => panic!("{name}: member of type {other:?}; expected a 32-bit scalar"),
            };
            (
                m.name.clone().unwrap_or_default(),
                m.offset as usize,
                ty.to_string(),
            )
        })
        .collect();
    (slots, span)
}

/// Each `#[repr(C)]` parameter struct the ops upload has the byte layout of the WGSL struct
/// the shader reads it as: member by member the same offset and scalar type, the same name
/// (an array's elements may have their own names: `mean` is `mean_r`, `mean_g`, `mean_b`),
/// and the same size. A field added, dropped, reordered or retyped on one side fails here
/// instead of reading garbage on the GPU.
#[test]
fn every_parameter_struct_matches_its_wgsl_struct_as_naga_lays_it_out() {
    let layouts = alexnet_wgpu::ops::uniform_layouts();
    for layout in &layouts {
        let module = naga::front::wgsl::parse_str(layout.shader.source()).unwrap();
        let what = format!("{} in {}.wgsl", layout.wgsl, layout.shader.name());
        let (wgsl, span) = wgsl_slots(&module, layout.wgsl);
        let rust = rust_slots(layout);
        assert_eq!(wgsl.len(), rust.len(), "{what}: {wgsl:?} vs {rust:?}");
        assert_eq!(span, layout.size, "{what}: WGSL size vs Rust size");
        for ((w_name, w_offset, w_ty), (r_name, r_offset, r_ty)) in wgsl.iter().zip(&rust) {
            assert_eq!(
                (w_offset, w_ty),
                (r_offset, r_ty),
                "{what}: member '{w_name}' against Rust field '{r_name}'"
            );
            if !r_name.contains('[') {
                assert_eq!(w_name, r_name, "{what}: member at offset {w_offset}");
            }
        }
    }
    // Every shader with a uniform struct at binding 0 has a layout to check.
    for shader in Shader::ALL {
        let module = naga::front::wgsl::parse_str(shader.source()).unwrap();
        for (_, var) in module.global_variables.iter() {
            if var.space != naga::AddressSpace::Uniform {
                continue;
            }
            let name = module.types[var.ty].name.clone().unwrap_or_default();
            assert!(
                layouts.iter().any(|l| l.shader == shader && l.wgsl == name),
                "{}.wgsl's uniform {name} has no Rust layout in ops::uniform_layouts",
                shader.name()
            );
        }
    }
}
