// activation.wgsl — the elementwise non-linearities: LeakyReLU (torch.nn.LeakyReLU(
// negative_slope)), ELU (torch.nn.ELU(alpha)), Sigmoid (torch.nn.Sigmoid), Tanh (torch.nn.Tanh)
// and ReLU (torch.nn.ReLU), over any shape. One forward and one backward kernel body; `p.op`
// picks the function (uniform across the dispatch, so the branch never diverges).
//
// op 0  LeakyReLU  y = x if x > 0 else c · x              dy/dx = 1 if x > 0 else c
//                  (PyTorch: the gradient at 0 is the slope)
// op 1  ELU        y = x if x > 0 else c · (exp(x) − 1)    dy/dx = 1 if x > 0 else y + c
//                  (= c · exp(x), from the saved output as PyTorch's elu_backward does with
//                  is_result = true)
// op 2  Sigmoid    y = 1 / (1 + exp(−x))                   dy/dx = y · (1 − y)
// op 3  Tanh       y = tanh(x)                              dy/dx = 1 − y²
// op 4  ReLU       y = max(x, 0)  (NaN propagates)          dx = dy if y > 0 else 0
//                  (y > 0 exactly where x > 0; PyTorch's gradient at 0 is 0; dx is 0, not
//                  dy · 0, where y ≤ 0, so a non-finite dy there gives 0 as in PyTorch; the
//                  host binds y as x too, ReLU's backward having only the output)
// where c is LeakyReLU's negative slope or ELU's alpha. The backward is dx = dy · dy/dx,
// from the forward's input x (the branch of LeakyReLU and ELU: a negative slope would make
// the sign of y ambiguous) and output y (the value of ELU, Sigmoid and Tanh, as PyTorch's
// sigmoid_backward and tanh_backward use the output).
//
// Bindings (group 0): 0 = params (uniform: len, coefficient, op), then
//   activation_forward:   1 x, 2 y
//   activation_backward:  1 x, 2 y, 3 dy, 4 dx  (ReLU: 1 y, 2 y, 3 dy, 4 dx)
// One invocation per element; flat index from common.wgsl's flat_index.

const LEAKY_RELU: u32 = 0u;
const ELU: u32 = 1u;
const SIGMOID: u32 = 2u;
const TANH: u32 = 3u;
const RELU: u32 = 4u;

struct ActivationParams {
    len: u32,
    // LeakyReLU's negative slope or ELU's alpha; unused by Sigmoid and Tanh.
    coefficient: f32,
    op: u32,
}

@group(0) @binding(0) var<uniform> p: ActivationParams;

fn activate(x: f32) -> f32 {
    switch p.op {
        case LEAKY_RELU: {
            // `x > 0` is false for NaN, and slope · NaN is NaN: NaN propagates.
            return select(p.coefficient * x, x, x > 0.0);
        }
        case ELU: {
            // min(x, 0) keeps exp from overflowing on the branch select discards.
            return select(p.coefficient * (exp(min(x, 0.0)) - 1.0), x, x > 0.0);
        }
        case SIGMOID: {
            // exp of −|x| never overflows; e / (1 + e) keeps the relative precision of a
            // tiny y for very negative x, where 1 − 1 / (1 + e) would cancel.
            let e = exp(-abs(x));
            return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
        }
        case TANH: {
            // Some drivers build tanh from sinh / cosh, which is inf / inf = NaN past |x| ≈ 89;
            // tanh(±10) already rounds to ±1 in f32.
            return tanh(clamp(x, -10.0, 10.0));
        }
        default: {
            // RELU (common.wgsl).
            return relu(x);
        }
    }
}

// dy · dy/dx.
fn gradient(x: f32, y: f32, dy: f32) -> f32 {
    switch p.op {
        case LEAKY_RELU: {
            return dy * select(p.coefficient, 1.0, x > 0.0);
        }
        case ELU: {
            return dy * select(y + p.coefficient, 1.0, x > 0.0);
        }
        case SIGMOID: {
            return dy * (y * (1.0 - y));
        }
        case TANH: {
            return dy * (1.0 - y * y);
        }
        default: {
            // RELU
            return select(0.0, dy, y > 0.0);
        }
    }
}

@group(0) @binding(1) var<storage, read> fwd_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> fwd_y: array<f32>;

@compute @workgroup_size(WG)
fn activation_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let i = flat_index(gid, nwg);
    if i >= p.len {
        return;
    }
    fwd_y[i] = activate(fwd_x[i]);
}

@group(0) @binding(1) var<storage, read> bwd_x: array<f32>;
@group(0) @binding(2) var<storage, read> bwd_y: array<f32>;
@group(0) @binding(3) var<storage, read> bwd_dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> bwd_dx: array<f32>;

@compute @workgroup_size(WG)
fn activation_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let i = flat_index(gid, nwg);
    if i >= p.len {
        return;
    }
    bwd_dx[i] = gradient(bwd_x[i], bwd_y[i], bwd_dy[i]);
}
