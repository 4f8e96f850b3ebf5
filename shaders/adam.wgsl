// adam.wgsl — Adam and AdamW (torch.optim.Adam / torch.optim.AdamW, amsgrad off),
// elementwise over one parameter tensor (or one slice of it).
//
// At step t, with bc1 = 1 − β1ᵗ and bc2_sqrt = √(1 − β2ᵗ):
//   Adam:   g = grad + weight_decay · param            (L2 penalty in the gradient)
//   AdamW:  param ·= 1 − lr · weight_decay;  g = grad  (decoupled weight decay)
//   m = β1 · m + (1 − β1) · g
//   v = β2 · v + (1 − β2) · g²
//   param −= (lr / bc1) · m / (√v / bc2_sqrt + eps)    (PyTorch's order of operations)
// Every scalar (1 − β, lr / bc1, 1 − lr·wd, bc2_sqrt) is computed by the host in f64 and
// rounded once, as PyTorch does with its Python-float scalars: 1 − β2 formed in f32 from
// f32(0.999) would be 1.3e-5 off.
//
// Bindings (group 0): 0 = params (uniform: len), 1 = hyper-parameters (uniform),
//   adam_step: 2 grad, 3 param, 4 m (exp_avg), 5 v (exp_avg_sq)
// One invocation per element; flat index from common.wgsl's flat_index.

// ops::UpdateParams, as sgd.wgsl's.
struct UpdateParams {
    len: u32,
}

struct AdamHyper {
    step_size: f32,
    beta1: f32,
    beta2: f32,
    one_minus_beta1: f32,
    one_minus_beta2: f32,
    eps: f32,
    l2: f32,
    decay: f32,
    bias_correction2_sqrt: f32,
}

@group(0) @binding(0) var<uniform> p: UpdateParams;
@group(0) @binding(1) var<uniform> hyper: AdamHyper;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> param: array<f32>;
@group(0) @binding(4) var<storage, read_write> exp_avg: array<f32>;
@group(0) @binding(5) var<storage, read_write> exp_avg_sq: array<f32>;

@compute @workgroup_size(WG)
fn adam_step(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let i = flat_index(gid, nwg);
    if i >= p.len {
        return;
    }
    // Adam: l2 = weight_decay, decay = 1.  AdamW: l2 = 0, decay = 1 − lr · weight_decay.
    let w = param[i] * hyper.decay;
    let g = grad[i] + hyper.l2 * param[i];
    let m = hyper.beta1 * exp_avg[i] + hyper.one_minus_beta1 * g;
    let v = hyper.beta2 * exp_avg_sq[i] + hyper.one_minus_beta2 * g * g;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    let denom = sqrt(v) / hyper.bias_correction2_sqrt + hyper.eps;
    param[i] = w - hyper.step_size * m / denom;
}
