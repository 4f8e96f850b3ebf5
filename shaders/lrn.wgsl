// lrn.wgsl — local response normalisation across channels (torch.nn.LocalResponseNorm).
//
// Layout: x, y, scale, dy, dx all [N, C, H, W].
// The window of channel c is W(c) = [c − size/2, c + (size−1)/2] ∩ [0, C)  (PyTorch pads
// size/2 channels before and (size−1)/2 after, and always divides by size):
//   s[c] = k + (alpha / size) · Σ_{c' ∈ W(c)} x[c']²
//   y[c] = x[c] · s[c]^(−beta)
// Backward (c ∈ W(j) ⇔ j ∈ [c − (size−1)/2, c + size/2]):
//   dx[c] = dy[c] · s[c]^(−beta) − (2 · alpha · beta / size) · x[c] · Σ_{j : c ∈ W(j)} dy[j] · y[j] / s[j]
// The forward writes s so the backward need not recompute it.
//
// Bindings (group 0): 0 = params (uniform), then
//   lrn_forward:   1 x, 2 y, 3 scale
//   lrn_backward:  1 x, 2 y, 3 scale, 4 dy, 5 dx
// One invocation per element; flat index from common.wgsl's flat_index.

struct LrnParams {
    batch: u32,
    channels: u32,
    height: u32,
    width: u32,
    size: u32,
    alpha: f32,
    beta: f32,
    k: f32,
}

@group(0) @binding(0) var<uniform> p: LrnParams;

@group(0) @binding(1) var<storage, read> fwd_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> fwd_y: array<f32>;
@group(0) @binding(3) var<storage, read_write> fwd_scale: array<f32>;

@compute @workgroup_size(WG)
fn lrn_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let idx = flat_index(gid, nwg);
    let plane = p.height * p.width;
    if idx >= p.batch * p.channels * plane {
        return;
    }
    let c = i32((idx / plane) % p.channels);
    let first = max(c - i32(p.size / 2u), 0);
    let last = min(c + i32((p.size - 1u) / 2u), i32(p.channels) - 1);
    var sum_sq = 0.0;
    for (var j = first; j <= last; j++) {
        let v = fwd_x[u32(i32(idx) + (j - c) * i32(plane))];
        sum_sq += v * v;
    }
    let s = p.k + p.alpha / f32(p.size) * sum_sq;
    fwd_scale[idx] = s;
    fwd_y[idx] = fwd_x[idx] * pow(s, -p.beta);
}

@group(0) @binding(1) var<storage, read> bwd_x: array<f32>;
@group(0) @binding(2) var<storage, read> bwd_y: array<f32>;
@group(0) @binding(3) var<storage, read> bwd_scale: array<f32>;
@group(0) @binding(4) var<storage, read> bwd_dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> bwd_dx: array<f32>;

@compute @workgroup_size(WG)
fn lrn_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let idx = flat_index(gid, nwg);
    let plane = p.height * p.width;
    if idx >= p.batch * p.channels * plane {
        return;
    }
    let c = i32((idx / plane) % p.channels);
    // Channels j whose window contains c.
    let first = max(c - i32((p.size - 1u) / 2u), 0);
    let last = min(c + i32(p.size / 2u), i32(p.channels) - 1);
    var acc = 0.0;
    for (var j = first; j <= last; j++) {
        let at = u32(i32(idx) + (j - c) * i32(plane));
        acc += bwd_dy[at] * bwd_y[at] / bwd_scale[at];
    }
    let coeff = 2.0 * p.alpha * p.beta / f32(p.size);
    bwd_dx[idx] = bwd_dy[idx] * pow(bwd_scale[idx], -p.beta) - coeff * bwd_x[idx] * acc;
}
