//! Conv2d (`shaders/conv2d.wgsl`): forward, and the gradients of input, weight and bias.

use crate::error::{Error, Result};
use crate::ops::gemm::{self, Geometry};
use crate::ops::gemm_reduce;
use crate::ops::tune::{self, Tuned};
use crate::ops::{expect_shape, launch, nchw, shader_params};
use crate::ops::{Kernels, Shader};
use crate::runtime::{Arg, Dispatch, Gpu, Phase, Tensor};

/// A 2-D convolution's hyper-parameters, as `torch.nn.Conv2d` takes them (square kernel).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub groups: usize,
}

impl Conv2dConfig {
    /// Weight shape `[out, in/groups, k, k]`.
    pub fn weight_shape(&self) -> [usize; 4] {
        [
            self.out_channels,
            self.in_channels / self.groups.max(1),
            self.kernel,
            self.kernel,
        ]
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(Error::Config(format!("conv2d {self:?}: {what}")));
        if self.kernel == 0 || self.stride == 0 || self.groups == 0 {
            return bad("kernel, stride and groups must be at least 1".into());
        }
        if !self.in_channels.is_multiple_of(self.groups)
            || !self.out_channels.is_multiple_of(self.groups)
        {
            return bad(format!(
                "groups {} must divide in_channels {} and out_channels {}",
                self.groups, self.in_channels, self.out_channels
            ));
        }
        Ok(())
    }

    /// Output height and width for an input of `h × w`; an error if the kernel does not fit.
    pub fn output_hw(&self, h: usize, w: usize) -> Result<(usize, usize)> {
        let out = |size: usize| {
            (size + 2 * self.padding)
                .checked_sub(self.kernel)
                .map(|s| s / self.stride + 1)
        };
        match (out(h), out(w)) {
            (Some(oh), Some(ow)) => Ok((oh, ow)),
            _ => Err(Error::Shape {
                op: "conv2d",
                what: format!(
                    "input {h}x{w} with padding {} is smaller than the {}x{} kernel",
                    self.padding, self.kernel, self.kernel
                ),
            }),
        }
    }
}

/// The plain kernels' parameters (`Conv2dParams` in `shaders/conv2d.wgsl`).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Conv2dParams {
    sizes: gemm::ConvSizes,
    relu: u32,
}

shader_params!(Conv2dParams { sizes, relu });

impl Conv2dParams {
    fn new(g: &Geometry, relu: bool) -> Result<Self> {
        Ok(Self {
            sizes: g.shader_sizes("conv2d")?,
            relu: u32::from(relu),
        })
    }
}

/// Checks every tensor against `cfg` and the input's shape; returns the convolution's shape
/// (whose `shader_sizes` are the plain kernel's parameters).
fn check(
    cfg: &Conv2dConfig,
    x_shape: &Tensor,
    w: &Tensor,
    bias_like: Option<&Tensor>,
    y_like: &Tensor,
) -> Result<Geometry> {
    cfg.validate()?;
    let [n, c, h, wd] = nchw("conv2d", x_shape)?;
    if c != cfg.in_channels {
        return Err(Error::Shape {
            op: "conv2d",
            what: format!(
                "tensor '{}' has {c} channels, the layer expects {}",
                x_shape.name(),
                cfg.in_channels
            ),
        });
    }
    let (oh, ow) = cfg.output_hw(h, wd)?;
    expect_shape("conv2d", w, &cfg.weight_shape())?;
    if let Some(b) = bias_like {
        expect_shape("conv2d", b, &[cfg.out_channels])?;
    }
    expect_shape("conv2d", y_like, &[n, cfg.out_channels, oh, ow])?;
    let g = Geometry {
        batch: n,
        in_channels: c,
        in_h: h,
        in_w: wd,
        out_channels: cfg.out_channels,
        out_h: oh,
        out_w: ow,
        kernel_h: cfg.kernel,
        kernel_w: cfg.kernel,
        stride: cfg.stride,
        padding: cfg.padding,
        groups: cfg.groups,
    };
    g.shader_sizes("conv2d")?;
    Ok(g)
}

/// `y = conv2d(x, w) + b`, or with `relu`, `y = relu(conv2d(x, w) + b)`: the ReLU layer
/// after the convolution fused into its output (the backward is ReLU's, from this y).
///
/// # Shapes
/// x `[N, C, H, W]`, w `[O, C/G, K, K]`, b `[O]`, y `[N, O, OH, OW]`.
pub fn conv2d_forward(
    gpu: &Gpu,
    cfg: &Conv2dConfig,
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    y: &Tensor,
    relu: bool,
) -> Result<Vec<Dispatch>> {
    let g = check(cfg, x, w, Some(b), y)?;
    let p = Conv2dParams::new(&g, relu)?;
    let tuned = kernels(gpu, cfg, &g, Phase::Whole)?;
    if tuned.kernels == Kernels::Tiled {
        let rows = g.all_rows();
        return gemm::forward(gpu, &g, x, w.all(), b, y, rows, relu, tuned.gemm);
    }
    let args = [
        Arg::Read(x.all()),
        Arg::Read(w.all()),
        Arg::Read(b.all()),
        Arg::Write(y.all()),
    ];
    Ok(vec![launch(
        gpu,
        Shader::Conv2d,
        "conv2d_forward",
        &p,
        &args,
        y.numel(),
    )?])
}

/// Gradients of conv2d: `dx = ∂L/∂x` (assigned, skipped when `dx` is `None`, as for a
/// network's first layer), and with `grads = Some((dw, db))`, `dw += ∂L/∂w`, `db += ∂L/∂b`
/// (`None` for frozen parameters: no weight-gradient kernel is recorded at all).
///
/// # Shapes
/// As `conv2d_forward`; dy like y, dx like x, dw like w, db like b.
pub fn conv2d_backward(
    gpu: &Gpu,
    cfg: &Conv2dConfig,
    x: &Tensor,
    w: &Tensor,
    dy: &Tensor,
    dx: Option<&Tensor>,
    grads: Option<(&Tensor, &Tensor)>,
) -> Result<Vec<Dispatch>> {
    let g = check(cfg, x, w, grads.map(|(_, db)| db), dy)?;
    let p = Conv2dParams::new(&g, false)?;
    if let Some((dw, _)) = grads {
        expect_shape("conv2d", dw, w.shape())?;
    }
    if let Some(dx) = dx {
        expect_shape("conv2d", dx, x.shape())?;
    }
    let mut dispatches = Vec::with_capacity(4);
    if let Some(dx) = dx {
        let tuned = kernels(gpu, cfg, &g, Phase::InputGrad)?;
        let input_grad = match tuned.kernels {
            Kernels::Tiled => {
                let rows = g.all_rows();
                gemm::backward_input(gpu, &g, dy, w.all(), dx, rows, false, tuned.gemm)?
            }
            Kernels::Plain => {
                let args = [
                    Arg::Read(dy.all()),
                    Arg::Read(w.all()),
                    Arg::Write(dx.all()),
                ];
                let entry = "conv2d_backward_input";
                launch(gpu, Shader::Conv2d, entry, &p, &args, dx.numel())?
            }
        };
        dispatches.push(input_grad.in_phase(Phase::InputGrad));
    }
    let Some((dw, db)) = grads else {
        return Ok(dispatches);
    };
    let tuned = kernels(gpu, cfg, &g, Phase::WeightGrad)?;
    match tuned.kernels {
        Kernels::Tiled => {
            dispatches.extend(
                gemm::backward_weight(gpu, &g, dy, x, dw.all(), g.all_rows(), tuned.gemm)?
                    .into_iter()
                    .map(|d| d.in_phase(Phase::WeightGrad)),
            );
            dispatches.push(gemm_reduce::backward_bias(gpu, &g, dy, db)?.in_phase(Phase::BiasGrad));
        }
        Kernels::Plain => {
            let args = [
                Arg::Read(dy.all()),
                Arg::Read(x.all()),
                Arg::Write(dw.all()),
            ];
            let entry = "conv2d_backward_weight";
            let weight = launch(gpu, Shader::Conv2d, entry, &p, &args, dw.numel())?;
            dispatches.push(weight.in_phase(Phase::WeightGrad));
            let args = [Arg::Read(dy.all()), Arg::Write(db.all())];
            let entry = "conv2d_backward_bias";
            let bias = launch(gpu, Shader::Conv2d, entry, &p, &args, db.numel())?;
            dispatches.push(bias.in_phase(Phase::BiasGrad));
        }
    }
    Ok(dispatches)
}

/// The kernels for this convolution's `phase` (forward: [`Phase::Whole`]): the device
/// policy's, or where it autotunes, the fastest on scratch tensors of this shape.
fn kernels(gpu: &Gpu, cfg: &Conv2dConfig, g: &Geometry, phase: Phase) -> Result<Tuned> {
    let key = format!(
        "conv2d n{} c{} {}x{} o{} k{} s{} p{} g{} {phase:?}",
        g.batch,
        g.in_channels,
        g.in_h,
        g.in_w,
        cfg.out_channels,
        cfg.kernel,
        cfg.stride,
        cfg.padding,
        cfg.groups
    );
    // The GEMM's rows: input channels for the input gradient, else output channels (per group).
    let m = match phase {
        Phase::InputGrad => g.in_channels / g.groups,
        _ => g.out_channels / g.groups,
    };
    tune::choose(gpu, &key, m, || {
        let scratch = |name: &str, shape: &[usize]| Tensor::zeros(gpu, name, shape);
        let x = scratch("autotune x", &[g.batch, g.in_channels, g.in_h, g.in_w])?;
        let w = scratch("autotune w", &cfg.weight_shape())?;
        let y = scratch("autotune y", &[g.batch, g.out_channels, g.out_h, g.out_w])?;
        let b = scratch("autotune b", &[g.out_channels])?;
        match phase {
            Phase::Whole => conv2d_forward(gpu, cfg, &x, &w, &b, &y, false),
            Phase::InputGrad => {
                let dx = scratch("autotune dx", x.shape())?;
                conv2d_backward(gpu, cfg, &x, &w, &y, Some(&dx), None)
            }
            Phase::WeightGrad | Phase::BiasGrad => {
                let dw = scratch("autotune dw", w.shape())?;
                conv2d_backward(gpu, cfg, &x, &w, &y, None, Some((&dw, &b)))
            }
        }
    })
}
