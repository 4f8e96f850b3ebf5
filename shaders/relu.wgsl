// relu.wgsl — rectified linear unit (torch.nn.ReLU), elementwise over any shape.
//
// Forward:   y = max(x, 0)            (NaN propagates, as in PyTorch)
// Backward:  dx = dy if y > 0 else 0  (y > 0 exactly where x > 0; PyTorch's gradient at 0 is 0)
//
// Bindings (group 0): 0 = params (uniform: len), then
//   relu_forward:   1 x, 2 y
//   relu_backward:  1 y, 2 dy, 3 dx
// One invocation per element; flat index from common.wgsl's flat_index.

struct ReluParams {
    len: u32,
}

@group(0) @binding(0) var<uniform> p: ReluParams;

@group(0) @binding(1) var<storage, read> fwd_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> fwd_y: array<f32>;

@compute @workgroup_size(WG)
fn relu_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let i = flat_index(gid, nwg);
    if i >= p.len {
        return;
    }
    let x = fwd_x[i];
    // `x <= 0` is false for NaN, so NaN passes through.
    fwd_y[i] = select(x, 0.0, x <= 0.0);
}

@group(0) @binding(1) var<storage, read> bwd_y: array<f32>;
@group(0) @binding(2) var<storage, read> bwd_dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> bwd_dx: array<f32>;

@compute @workgroup_size(WG)
fn relu_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let i = flat_index(gid, nwg);
    if i >= p.len {
        return;
    }
    bwd_dx[i] = select(0.0, bwd_dy[i], bwd_y[i] > 0.0);
}
