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
// Two forms of each pass, summing the same terms in the same order (the same results):
//   lrn_forward, lrn_backward              one invocation per element, reading its window
//                                          from global memory (flat index from common.wgsl's
//                                          flat_index): the plain kernels, and any size
//   lrn_forward_tiled, lrn_backward_tiled  a workgroup per LRN_PIXELS pixels × LRN_CHANNELS
//                                          channels of one image (workgroup (x, y, z) =
//                                          (pixel tile, channel block, image)) first loads the
//                                          channels their windows span into workgroup memory,
//                                          each once, then reads the windows there; windows of
//                                          at most LRN_MAX_SIZE channels
//
// Bindings (group 0): 0 = params (uniform), then
//   lrn_forward(_tiled):   1 x, 2 y, 3 scale
//   lrn_backward(_tiled):  1 x, 2 y, 3 scale, 4 dy, 5 dx

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

// The tiled kernels' shape (src/ops/lrn.rs has the same numbers).
const LRN_PIXELS: u32 = 32u;
const LRN_CHANNELS: u32 = 8u;
const LRN_MAX_SIZE: u32 = 16u;
// Per pixel of the tile, the channels the block's windows span: [first, first + rows).
var<workgroup> window_tile: array<f32, (LRN_CHANNELS + LRN_MAX_SIZE - 1u) * LRN_PIXELS>;

// The channels [first, last] (clipped to the image's) that channel c's window sums in the
// forward (`before` = size/2, `after` = (size−1)/2), or whose windows hold c in the backward
// (the two swapped).
fn window(c: i32, before: u32, after: u32) -> vec2i {
    return vec2i(max(c - i32(before), 0), min(c + i32(after), i32(p.channels) - 1));
}

fn scale_of(sum_sq: f32) -> f32 {
    return p.k + p.alpha / f32(p.size) * sum_sq;
}

// dx from the element's dy, s and x, and the sum of dy·y/s over the windows that hold it.
fn input_grad(dy: f32, s: f32, x: f32, acc: f32) -> f32 {
    let coeff = 2.0 * p.alpha * p.beta / f32(p.size);
    return dy * pow(s, -p.beta) - coeff * x * acc;
}

// The tiled kernels' element: (pixel, channel, index of [n, c, pixel]); pixel ≥ plane or
// channel ≥ C marks an invocation past the edge.
fn tiled_element(wid: vec3u, lid: vec3u) -> vec3u {
    let plane = p.height * p.width;
    let pixel = wid.x * LRN_PIXELS + lid.x;
    let c = wid.y * LRN_CHANNELS + lid.y;
    return vec3u(pixel, c, (wid.z * p.channels + c) * plane + pixel);
}

// Where tile row r (channel first + r) of this invocation's pixel is in the tensors, or −1
// outside the image (the row holds 0 there). The rows are shared among the workgroup's
// invocations; each entry point loads its own values.
fn tile_source(wid: vec3u, lid: vec3u, first: i32, r: u32) -> i32 {
    let plane = p.height * p.width;
    let pixel = wid.x * LRN_PIXELS + lid.x;
    let c = first + i32(r);
    if pixel >= plane || c < 0 || c >= i32(p.channels) {
        return -1;
    }
    return i32((wid.z * p.channels + u32(c)) * plane + pixel);
}

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
    let range = window(c, p.size / 2u, (p.size - 1u) / 2u);
    var sum_sq = 0.0;
    for (var j = range.x; j <= range.y; j++) {
        let v = fwd_x[u32(i32(idx) + (j - c) * i32(plane))];
        sum_sq += v * v;
    }
    let s = scale_of(sum_sq);
    fwd_scale[idx] = s;
    fwd_y[idx] = fwd_x[idx] * pow(s, -p.beta);
}

@compute @workgroup_size(LRN_PIXELS, LRN_CHANNELS)
fn lrn_forward_tiled(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
    let first = i32(wid.y * LRN_CHANNELS) - i32(p.size / 2u);
    for (var r = lid.y; r < LRN_CHANNELS + p.size - 1u; r += LRN_CHANNELS) {
        let at = tile_source(wid, lid, first, r);
        window_tile[r * LRN_PIXELS + lid.x] = select(0.0, fwd_x[max(at, 0)], at >= 0);
    }
    workgroupBarrier();
    let e = tiled_element(wid, lid);
    if e.x >= p.height * p.width || e.y >= p.channels {
        return;
    }
    let c = i32(e.y);
    let range = window(c, p.size / 2u, (p.size - 1u) / 2u);
    var sum_sq = 0.0;
    for (var j = range.x; j <= range.y; j++) {
        let v = window_tile[u32(j - first) * LRN_PIXELS + lid.x];
        sum_sq += v * v;
    }
    let s = scale_of(sum_sq);
    fwd_scale[e.z] = s;
    fwd_y[e.z] = window_tile[u32(c - first) * LRN_PIXELS + lid.x] * pow(s, -p.beta);
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
    let range = window(c, (p.size - 1u) / 2u, p.size / 2u);
    var acc = 0.0;
    for (var j = range.x; j <= range.y; j++) {
        let at = u32(i32(idx) + (j - c) * i32(plane));
        acc += bwd_dy[at] * bwd_y[at] / bwd_scale[at];
    }
    bwd_dx[idx] = input_grad(bwd_dy[idx], bwd_scale[idx], bwd_x[idx], acc);
}

@compute @workgroup_size(LRN_PIXELS, LRN_CHANNELS)
fn lrn_backward_tiled(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
    // The tile holds dy·y/s of the channels whose windows hold the block's.
    let first = i32(wid.y * LRN_CHANNELS) - i32((p.size - 1u) / 2u);
    for (var r = lid.y; r < LRN_CHANNELS + p.size - 1u; r += LRN_CHANNELS) {
        let at = tile_source(wid, lid, first, r);
        let i = max(at, 0);
        window_tile[r * LRN_PIXELS + lid.x] = select(0.0, bwd_dy[i] * bwd_y[i] / bwd_scale[i], at >= 0);
    }
    workgroupBarrier();
    let e = tiled_element(wid, lid);
    if e.x >= p.height * p.width || e.y >= p.channels {
        return;
    }
    let range = window(i32(e.y), (p.size - 1u) / 2u, p.size / 2u);
    var acc = 0.0;
    for (var j = range.x; j <= range.y; j++) {
        acc += window_tile[u32(j - first) * LRN_PIXELS + lid.x];
    }
    bwd_dx[e.z] = input_grad(bwd_dy[e.z], bwd_scale[e.z], bwd_x[e.z], acc);
}
