// sgd.wgsl — stochastic gradient descent with momentum and weight decay (torch.optim.SGD,
// dampening 0, no Nesterov), elementwise over one parameter tensor (or one slice of it).
//
//   g   = grad + weight_decay · param
//   buf = momentum · buf + g          (buf starts at 0, which equals PyTorch's buf = g on the
//                                      first step)
//   param -= lr · buf
// The hyper-parameters are a uniform the host rewrites when a schedule changes the rate.
//
// Bindings (group 0): 0 = params (uniform: len), 1 = hyper-parameters (uniform),
//   sgd_step: 2 grad, 3 param, 4 momentum buffer
// One invocation per element; flat index from common.wgsl's flat_index.

// ops::UpdateParams, as adam.wgsl's.
struct UpdateParams {
    len: u32,
}

struct SgdHyper {
    lr: f32,
    momentum: f32,
    weight_decay: f32,
}

@group(0) @binding(0) var<uniform> p: UpdateParams;
@group(0) @binding(1) var<uniform> hyper: SgdHyper;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> param: array<f32>;
@group(0) @binding(4) var<storage, read_write> momentum_buf: array<f32>;

@compute @workgroup_size(WG)
fn sgd_step(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let i = flat_index(gid, nwg);
    if i >= p.len {
        return;
    }
    let g = grad[i] + hyper.weight_decay * param[i];
    let buf = hyper.momentum * momentum_buf[i] + g;
    momentum_buf[i] = buf;
    param[i] -= hyper.lr * buf;
}
