// activation.wgsl — the ReLU alternatives: LeakyReLU (torch.nn.LeakyReLU(negative_slope)) and
// ELU (torch.nn.ELU(alpha)), elementwise over any shape. (Plain ReLU lives in relu.wgsl.)
//
// LeakyReLU  forward:  y = x if x > 0 else slope · x
//            backward: dx = dy if x > 0 else slope · dy   (PyTorch: gradient at 0 is slope)
// ELU        forward:  y = x if x > 0 else alpha · (exp(x) − 1)
//            backward: dx = dy if x > 0 else dy · (y + alpha)   (= dy · alpha · exp(x), from the
//                      saved output as PyTorch's elu_backward does with is_result = true)
// Both backwards read the forward's input x (LeakyReLU: a negative slope would make the sign
// of y ambiguous) except ELU, which reads x for the branch and y for the value.
//
// Bindings (group 0): 0 = params (uniform: len, coefficient), then
//   leaky_relu_forward, elu_forward:  1 x, 2 y
//   leaky_relu_backward:              1 x, 2 dy, 3 dx
//   elu_backward:                     1 x, 2 y, 3 dy, 4 dx
// One invocation per element; flat index gid.x + gid.y · num_workgroups.x · WG.

override WG: u32 = 64u;

struct ActivationParams {
    len: u32,
    // LeakyReLU's negative slope or ELU's alpha.
    coefficient: f32,
}

@group(0) @binding(0) var<uniform> p: ActivationParams;

@group(0) @binding(1) var<storage, read> fwd_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> fwd_y: array<f32>;

@compute @workgroup_size(WG)
fn leaky_relu_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let i = gid.x + gid.y * nwg.x * WG;
    if i >= p.len {
        return;
    }
    let x = fwd_x[i];
    // `x > 0` is false for NaN, and slope · NaN is NaN: NaN propagates.
    fwd_y[i] = select(p.coefficient * x, x, x > 0.0);
}

@compute @workgroup_size(WG)
fn elu_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let i = gid.x + gid.y * nwg.x * WG;
    if i >= p.len {
        return;
    }
    let x = fwd_x[i];
    // min(x, 0) keeps exp from overflowing on the branch select discards.
    let negative = p.coefficient * (exp(min(x, 0.0)) - 1.0);
    fwd_y[i] = select(negative, x, x > 0.0);
}

@group(0) @binding(1) var<storage, read> leaky_x: array<f32>;
@group(0) @binding(2) var<storage, read> leaky_dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> leaky_dx: array<f32>;

@compute @workgroup_size(WG)
fn leaky_relu_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let i = gid.x + gid.y * nwg.x * WG;
    if i >= p.len {
        return;
    }
    let dy = leaky_dy[i];
    leaky_dx[i] = select(p.coefficient * dy, dy, leaky_x[i] > 0.0);
}

@group(0) @binding(1) var<storage, read> elu_x: array<f32>;
@group(0) @binding(2) var<storage, read> elu_y: array<f32>;
@group(0) @binding(3) var<storage, read> elu_dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> elu_dx: array<f32>;

@compute @workgroup_size(WG)
fn elu_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let i = gid.x + gid.y * nwg.x * WG;
    if i >= p.len {
        return;
    }
    let dy = elu_dy[i];
    elu_dx[i] = select(dy * (elu_y[i] + p.coefficient), dy, elu_x[i] > 0.0);
}
