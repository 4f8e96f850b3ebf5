//! Classifying what a native graphics app renders, on the app's own GPU device.
//!
//! The "app" here owns its `wgpu::Device` and `Queue` (built against wgpu 30 — an app must use
//! the same wgpu major version as this library to share a device) and renders a scene into an
//! off-screen texture every frame: a spinning, colour-cycling star over a gradient. The
//! library wraps that same device (`Gpu::from_device`: no second instance, no second device),
//! and each frame one command encoder holds the app's render pass, the WGSL preprocessing of
//! the texture (resize, centre crop, normalise — on the GPU, no copy through the CPU) and the
//! AlexNet forward pass. Only the logits are read back. It prints the top-5 and the per-frame
//! cost.
//!
//! ```sh
//! cargo run --release --example embed -- [--frames N] [--weights W.safetensors] [--width F]
//! ```
//! Without `--weights` the network is torchvision's AlexNet with random weights (so the
//! classes are meaningless; pass exported ImageNet weights for real ones); `--width 0.25`
//! makes it smaller for slow (software) adapters.

use std::time::Instant;

use alexnet_wgpu::infer::{top_k, Classifier};
use alexnet_wgpu::model::{AlexNet, AlexNetConfig, Init};
use alexnet_wgpu::Gpu;
use anyhow::{Context, Result};

const SIZE: u32 = 320;
const FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8UnormSrgb;

const SCENE: &str = r#"
struct Frame { time: f32 }
@group(0) @binding(0) var<uniform> frame: Frame;

struct Varyings { @builtin(position) position: vec4f, @location(0) uv: vec2f }

// One triangle that covers the screen.
@vertex fn vs(@builtin(vertex_index) i: u32) -> Varyings {
    let uv = vec2f(f32((i << 1u) & 2u), f32(i & 2u));
    return Varyings(vec4f(uv * 2.0 - 1.0, 0.0, 1.0), uv);
}

@fragment fn fs(v: Varyings) -> @location(0) vec4f {
    let p = v.uv * 2.0 - 1.0;
    let angle = atan2(p.y, p.x) + frame.time;
    let radius = length(p);
    let star = 0.45 + 0.2 * cos(5.0 * angle);
    let background = vec3f(0.2 + 0.3 * v.uv.x, 0.3, 0.6 - 0.3 * v.uv.y);
    let colour = 0.5 + 0.5 * cos(frame.time + vec3f(0.0, 2.0, 4.0));
    return vec4f(select(background, colour, radius < star), 1.0);
}
"#;

struct Args {
    frames: usize,
    weights: Option<std::path::PathBuf>,
    width: f64,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        frames: 5,
        weights: None,
        width: 1.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--frames" => args.frames = value()?.parse()?,
            "--weights" => args.weights = Some(value()?.into()),
            "--width" => args.width = value()?.parse()?,
            other => {
                anyhow::bail!("unknown argument {other}; expected --frames, --weights or --width")
            }
        }
    }
    Ok(args)
}

/// What the app owns: its device, its queue, its render target and pipeline.
struct App {
    device: wgpu::Device,
    queue: wgpu::Queue,
    target: wgpu::Texture,
    view: wgpu::TextureView,
    pipeline: wgpu::RenderPipeline,
    time: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
}

impl App {
    fn new() -> Result<Self> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
        let adapter =
            pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))?;
        println!("app adapter: {}", adapter.get_info().name);
        let (device, queue) =
            pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
                label: Some("app device"),
                // Share the adapter's limits: FC6's weight needs large storage bindings.
                required_limits: adapter.limits(),
                ..Default::default()
            }))?;
        let target = device.create_texture(&wgpu::TextureDescriptor {
            label: Some("scene"),
            size: wgpu::Extent3d {
                width: SIZE,
                height: SIZE * 3 / 4,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: FORMAT,
            // TEXTURE_BINDING is what lets the classifier read the frame on the GPU.
            usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::TEXTURE_BINDING,
            view_formats: &[],
        });
        let view = target.create_view(&wgpu::TextureViewDescriptor::default());
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("scene"),
            source: wgpu::ShaderSource::Wgsl(SCENE.into()),
        });
        let time = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("time"),
            size: 16,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("scene"),
            layout: None,
            vertex: wgpu::VertexState {
                module: &module,
                entry_point: Some("vs"),
                compilation_options: Default::default(),
                buffers: &[],
            },
            fragment: Some(wgpu::FragmentState {
                module: &module,
                entry_point: Some("fs"),
                compilation_options: Default::default(),
                targets: &[Some(FORMAT.into())],
            }),
            primitive: Default::default(),
            depth_stencil: None,
            multisample: Default::default(),
            multiview_mask: None,
            cache: None,
        });
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("scene"),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &[wgpu::BindGroupEntry {
                binding: 0,
                resource: time.as_entire_binding(),
            }],
        });
        Ok(Self {
            device,
            queue,
            target,
            view,
            pipeline,
            time,
            bind_group,
        })
    }

    fn render(&self, encoder: &mut wgpu::CommandEncoder, t: f32) {
        self.queue
            .write_buffer(&self.time, 0, bytemuck::bytes_of(&[t, 0.0, 0.0, 0.0]));
        let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
            label: Some("scene"),
            color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                view: &self.view,
                depth_slice: None,
                resolve_target: None,
                ops: wgpu::Operations {
                    load: wgpu::LoadOp::Clear(wgpu::Color::BLACK),
                    store: wgpu::StoreOp::Store,
                },
            })],
            ..Default::default()
        });
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        pass.draw(0..3, 0..1);
    }
}

fn main() -> Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args = parse_args()?;
    let app = App::new()?;
    // The library borrows the app's device and queue (wgpu handles are reference-counted).
    let gpu = Gpu::from_device(app.device.clone(), app.queue.clone());
    let classifier = match &args.weights {
        Some(path) => Classifier::from_file(&gpu, path, 224, 1, None)?,
        None => {
            let model = AlexNet::new(&gpu, AlexNetConfig::torchvision(1000).scaled(args.width))?;
            model.initialize(&gpu, Init::PyTorch, 0)?;
            println!(
                "no --weights: torchvision AlexNet (width {}) with random weights",
                args.width
            );
            Classifier::new(&gpu, model, 224, 1, None)?
        }
    };
    let preprocess = classifier.prepare_texture(&gpu, &app.target, &app.view, 0)?;
    let mut frame_program = alexnet_wgpu::Program::new();
    frame_program.push(preprocess);
    for frame in 0..args.frames {
        let start = Instant::now();
        gpu.submit("a frame", |encoder| {
            app.render(encoder, frame as f32 * 0.7);
            frame_program.record(encoder);
            classifier.forward().record(encoder);
        })?;
        let logits = classifier.plan.logits.read_f32(&gpu)?;
        let elapsed = start.elapsed();
        let top5 = top_k(&logits, 5, &classifier.labels);
        let names: Vec<String> = top5
            .iter()
            .map(|p| format!("{} {:.1}%", p.label, 100.0 * p.probability))
            .collect();
        println!(
            "frame {frame}: {:.1} ms; top-5: {}",
            elapsed.as_secs_f64() * 1e3,
            names.join(", ")
        );
    }
    let stats = gpu.pipelines.stats();
    println!(
        "pipelines: {} compiled, {} reused; render, preprocessing and forward share one device",
        stats.misses, stats.hits
    );
    Ok(())
}
