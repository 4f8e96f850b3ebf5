//! Prepared dispatches and programs. An op validates shapes once and returns `Dispatch`es
//! (pipeline + bind group + grid), which a `Program` records into one command encoder as
//! often as needed: a training step replays the same program without creating anything.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::runtime::device::Gpu;
use crate::runtime::gate::Gated;
use crate::runtime::pipeline::{Access, ShaderSource};
use crate::runtime::tensor::{Tensor, TensorSlice};

/// Threads per workgroup for the plain one-thread-per-element kernels (the `WG` override).
pub const WORKGROUP_SIZE: u32 = 256;

/// One binding of a kernel call, in binding order after the op's own parameters.
#[derive(Clone, Copy, Debug)]
pub enum Arg<'a> {
    /// A uniform buffer that the host rewrites between steps (learning rate, dropout seed).
    Uniform(&'a wgpu::Buffer),
    Read(TensorSlice<'a>),
    Write(TensorSlice<'a>),
    /// A 2-D float texture read with `textureLoad` (an app's rendered frame).
    Texture(&'a wgpu::TextureView),
}

/// Everything needed to prepare one dispatch. `params` is the op's parameter struct, bound
/// as a uniform at binding 0; `args` follow from binding 1.
pub struct KernelCall<'a> {
    pub shader: ShaderSource,
    pub entry: &'static str,
    pub params: &'a [u8],
    pub args: &'a [Arg<'a>],
    /// Number of invocations; spread over a 2-D grid when it exceeds one dimension's limit.
    pub threads: u64,
}

/// Which part of an op's gradient a dispatch computes, so a profile can split a layer's
/// backward time without guessing from entry-point names. The ops whose backward has parts
/// (convolution, linear) tag their dispatches; everything else is `Whole`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Phase {
    /// A forward pass, or a backward pass not split into parts.
    #[default]
    Whole,
    InputGrad,
    WeightGrad,
    BiasGrad,
}

/// A compiled pipeline, its bind group and its grid, ready to record any number of times.
pub struct Dispatch {
    pub label: &'static str,
    pub phase: Phase,
    pipeline: Arc<wgpu::ComputePipeline>,
    bind_group: wgpu::BindGroup,
    workgroups: [u32; 3],
    /// Where the GPU reads the workgroup counts instead, when set: a u32 tensor and the byte
    /// offset of the three counts.
    indirect: Option<(Tensor, u64)>,
    /// Kept alive with the bind group that references it.
    _params: Gated<wgpu::Buffer>,
}

impl Dispatch {
    /// The same dispatch tagged as computing `phase`.
    pub fn in_phase(self, phase: Phase) -> Self {
        Self { phase, ..self }
    }

    /// The workgroup counts it was prepared with.
    pub fn workgroups(&self) -> [u32; 3] {
        self.workgroups
    }

    /// The same dispatch with its workgroup counts read by the GPU from `args[3·slot ..
    /// 3·slot + 3]` (u32) when it runs: a kernel that writes them can skip it (zero
    /// workgroups) without the host knowing, as the loss scaler's gate does.
    pub fn indirect(self, args: &Tensor, slot: usize) -> Self {
        Self {
            indirect: Some((args.clone(), 12 * slot as u64)),
            ..self
        }
    }

    fn record_into(&self, pass: &mut wgpu::ComputePass<'_>) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        match &self.indirect {
            Some((args, offset)) => pass.dispatch_workgroups_indirect(args.buffer(), *offset),
            None => {
                let [x, y, z] = self.workgroups;
                pass.dispatch_workgroups(x, y, z);
            }
        }
    }
}

impl Gpu {
    /// Compiles (or fetches) the pipeline and creates the bind group for a one-invocation-per-
    /// element kernel: `call.threads` invocations of `WG` (an override) per workgroup.
    pub fn prepare(&self, call: KernelCall<'_>) -> Result<Dispatch> {
        self.prepare_overriding(call, &[])
    }

    /// As [`Gpu::prepare`], with values for the shader's other `override` constants.
    pub fn prepare_overriding(
        &self,
        call: KernelCall<'_>,
        constants: &[(&'static str, f64)],
    ) -> Result<Dispatch> {
        let workgroup = WORKGROUP_SIZE.min(self.limits().max_compute_invocations_per_workgroup);
        let grid = self.grid(call.threads, workgroup)?;
        let mut all = vec![("WG", f64::from(workgroup))];
        all.extend_from_slice(constants);
        self.prepare_with(call, &all, grid)
    }

    /// As [`Gpu::prepare`] for a kernel with a fixed workgroup size and an explicit grid
    /// (the tiled GEMM: one workgroup per output tile).
    pub fn prepare_grid(&self, call: KernelCall<'_>, grid: [usize; 3]) -> Result<Dispatch> {
        self.prepare_grid_with(call, &[], grid)
    }

    /// As [`Gpu::prepare_grid`], with values for the shader's `override` constants.
    pub fn prepare_grid_with(
        &self,
        call: KernelCall<'_>,
        constants: &[(&'static str, f64)],
        grid: [usize; 3],
    ) -> Result<Dispatch> {
        let max = self.limits().max_compute_workgroups_per_dimension as usize;
        if grid.iter().any(|&g| g > max) {
            return Err(Error::Config(format!(
                "{}: grid {grid:?} exceeds {max} workgroups per dimension",
                call.entry
            )));
        }
        let grid = grid.map(|g| g.max(1) as u32);
        self.prepare_with(call, constants, grid)
    }

    fn prepare_with(
        &self,
        call: KernelCall<'_>,
        constants: &[(&'static str, f64)],
        workgroups: [u32; 3],
    ) -> Result<Dispatch> {
        self.scoped(&format!("preparing {}", call.entry), || {
            self.prepare_scoped(call, constants, workgroups)
        })
    }

    fn prepare_scoped(
        &self,
        call: KernelCall<'_>,
        constants: &[(&'static str, f64)],
        workgroups: [u32; 3],
    ) -> Result<Dispatch> {
        let mut accesses = vec![Access::Uniform];
        accesses.extend(call.args.iter().map(|a| match a {
            Arg::Uniform(_) => Access::Uniform,
            Arg::Read(_) => Access::Read,
            Arg::Write(_) => Access::ReadWrite,
            Arg::Texture(_) => Access::Texture,
        }));
        let kernel =
            self.pipelines
                .get(&self.device, call.shader, call.entry, constants, &accesses)?;
        // Uniform buffers are read in 16-byte rows; pad so the struct never reads past the end.
        let mut params = call.params.to_vec();
        params.resize(params.len().div_ceil(16).max(1) * 16, 0);
        // create_buffer + write_buffer rather than create_buffer_init: the latter maps the
        // buffer at creation, which panics inside wgpu when the device is lost.
        let params_buffer = Gated::new(
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(call.entry),
                size: params.len() as u64,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
            &self.gate,
        );
        self.queue.write_buffer(&params_buffer, 0, &params);
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: params_buffer.as_entire_binding(),
        }];
        for (i, arg) in call.args.iter().enumerate() {
            let resource = match arg {
                Arg::Uniform(b) => b.as_entire_binding(),
                Arg::Read(s) | Arg::Write(s) => wgpu::BindingResource::Buffer(s.binding(self)?),
                Arg::Texture(view) => wgpu::BindingResource::TextureView(view),
            };
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource,
            });
        }
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(call.entry),
            layout: &kernel.layout,
            entries: &entries,
        });
        Ok(Dispatch {
            label: call.entry,
            phase: Phase::Whole,
            pipeline: kernel.pipeline,
            bind_group,
            workgroups,
            indirect: None,
            _params: params_buffer,
        })
    }

    /// Workgroup counts covering `threads` invocations. Shaders recover the flat index as
    /// `gid.x + gid.y * num_workgroups.x * WG`.
    fn grid(&self, threads: u64, workgroup: u32) -> Result<[u32; 3]> {
        let max = u64::from(self.limits().max_compute_workgroups_per_dimension);
        let groups = threads.div_ceil(u64::from(workgroup)).max(1);
        let x = groups.min(max);
        let y = groups.div_ceil(x);
        if y > max {
            return Err(Error::Config(format!(
                "{threads} invocations exceed one dispatch's grid ({max}x{max} workgroups)"
            )));
        }
        Ok([x as u32, y as u32, 1])
    }
}

/// What a program does, in order.
enum Command {
    Dispatch(Dispatch),
    /// Zero a tensor (gradients before a backward pass, since backward adds into them).
    Clear(Tensor),
}

/// A recorded sequence of dispatches and clears, replayed as one command encoder.
#[derive(Default)]
pub struct Program {
    commands: Vec<Command>,
}

impl Program {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, dispatch: Dispatch) {
        self.commands.push(Command::Dispatch(dispatch));
    }

    pub fn extend(&mut self, dispatches: impl IntoIterator<Item = Dispatch>) {
        self.commands
            .extend(dispatches.into_iter().map(Command::Dispatch));
    }

    pub fn append(&mut self, other: Program) {
        self.commands.extend(other.commands);
    }

    /// The program with every dispatch passed through `f` (its index among the dispatches
    /// and itself); clears are kept.
    pub fn map_dispatches(self, mut f: impl FnMut(usize, Dispatch) -> Dispatch) -> Program {
        let mut index = 0;
        let commands = self
            .commands
            .into_iter()
            .map(|command| match command {
                Command::Dispatch(d) => {
                    index += 1;
                    Command::Dispatch(f(index - 1, d))
                }
                clear => clear,
            })
            .collect();
        Program { commands }
    }

    /// The dispatches, in order.
    pub fn dispatches(&self) -> impl Iterator<Item = &Dispatch> {
        self.commands.iter().filter_map(|c| match c {
            Command::Dispatch(d) => Some(d),
            Command::Clear(_) => None,
        })
    }

    pub fn clear(&mut self, tensor: &Tensor) {
        self.commands.push(Command::Clear(tensor.clone()));
    }

    pub fn len(&self) -> usize {
        self.commands.len()
    }

    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    /// Records the program into `encoder`: runs of dispatches share one compute pass, and
    /// wgpu orders each dispatch after the writes of the ones before it.
    pub fn record(&self, encoder: &mut wgpu::CommandEncoder) {
        let mut i = 0;
        while i < self.commands.len() {
            match &self.commands[i] {
                Command::Clear(tensor) => {
                    clear(encoder, tensor);
                    i += 1;
                }
                Command::Dispatch(_) => {
                    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: None,
                        timestamp_writes: None,
                    });
                    while let Some(Command::Dispatch(d)) = self.commands.get(i) {
                        d.record_into(&mut pass);
                        i += 1;
                    }
                }
            }
        }
    }

    /// Number of dispatches (what [`Program::record_timed`] needs two queries each for).
    pub fn dispatch_count(&self) -> usize {
        self.commands
            .iter()
            .filter(|c| matches!(c, Command::Dispatch(_)))
            .count()
    }

    /// Records every dispatch in its own compute pass with GPU timestamps at its start and
    /// end, queries `2·i` and `2·i + 1` of `queries` from `first_query`; returns each
    /// dispatch's phase in order. For profiling: separate passes cost a little.
    pub fn record_timed(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        queries: &wgpu::QuerySet,
        first_query: u32,
    ) -> Vec<Phase> {
        let mut phases = Vec::new();
        for command in &self.commands {
            match command {
                Command::Clear(tensor) => clear(encoder, tensor),
                Command::Dispatch(d) => {
                    let at = first_query + 2 * phases.len() as u32;
                    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some(d.label),
                        timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                            query_set: queries,
                            beginning_of_pass_write_index: Some(at),
                            end_of_pass_write_index: Some(at + 1),
                        }),
                    });
                    d.record_into(&mut pass);
                    phases.push(d.phase);
                }
            }
        }
        phases
    }

    /// Records and submits the program on its own, reporting validation errors.
    pub fn run(&self, gpu: &Gpu) -> Result<()> {
        gpu.submit("running a program", |encoder| self.record(encoder))
    }
}

impl Gpu {
    /// Records with `f` into one encoder, submits it, and turns validation errors into
    /// `Error::Gpu` instead of wgpu's default panic.
    pub fn submit(&self, context: &str, f: impl FnOnce(&mut wgpu::CommandEncoder)) -> Result<()> {
        // A lost device or an error reported asynchronously surfaces here, typed.
        self.check()?;
        self.scoped(context, || {
            let mut encoder = self
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
            f(&mut encoder);
            self.queue.submit([encoder.finish()]);
            Ok(())
        })
    }
}

/// Zeroes the tensor's bytes only (a view of an arena shares its buffer).
fn clear(encoder: &mut wgpu::CommandEncoder, tensor: &Tensor) {
    encoder.clear_buffer(
        tensor.buffer(),
        tensor.byte_offset(),
        Some(tensor.byte_len()),
    );
}
