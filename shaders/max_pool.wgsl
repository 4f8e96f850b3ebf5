// max_pool.wgsl — 2-D max pooling, no padding, floor mode (torch.nn.MaxPool2d(kernel, stride)).
//
// Layout: x, dx [N, C, H, W]; y, dy, argmax [N, C, OH, OW], OH = (H − K) / S + 1.
// Forward:  y[n,c,i,j] = max over the K×K window at (i·S, j·S); argmax records the in-plane
//           index h·W + v of the FIRST maximum in row-major scan order — PyTorch's tie rule
//           (a later value wins only if strictly greater, or if it is NaN).
// Backward: dx[n,c,h,v] = Σ over windows (i,j) that contain (h,v) and whose argmax is (h,v)
//           of dy[n,c,i,j]. Overlapping windows (K > S) accumulate. Written as a gather over
//           the windows covering each input, so no two invocations write the same element.
//
// Bindings (group 0): 0 = params (uniform), then
//   max_pool_forward:   1 x, 2 y, 3 argmax (u32)
//   max_pool_backward:  1 dy, 2 argmax (u32), 3 dx
// One invocation per output (forward) or input (backward) element.

@group(0) @binding(3) var<storage, read_write> fwd_argmax: array<u32>;

@compute @workgroup_size(WG)
fn max_pool_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let idx = flat_index(gid, nwg);
    if idx >= output_count() {
        return;
    }
    let w = fixed_window(idx);
    var best_at = w.top * p.in_w + w.left;
    var best = fwd_x[w.plane_start + best_at];
    for (var kh = 0u; kh < p.kernel; kh++) {
        for (var kw = 0u; kw < p.kernel; kw++) {
            let at = (w.top + kh) * p.in_w + w.left + kw;
            let v = fwd_x[w.plane_start + at];
            // As PyTorch: `v != v` is true for NaN, which always takes the place.
            if v > best || v != v {
                best = v;
                best_at = at;
            }
        }
    }
    fwd_y[idx] = best;
    fwd_argmax[idx] = best_at;
}

@group(0) @binding(2) var<storage, read> bwd_argmax: array<u32>;
@group(0) @binding(3) var<storage, read_write> bwd_dx: array<f32>;

@compute @workgroup_size(WG)
fn max_pool_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let idx = flat_index(gid, nwg);
    if idx >= input_count() {
        return;
    }
    let in_at = plane_element(idx, p.in_h, p.in_w);
    let here = in_at.row * p.in_w + in_at.col;
    let rows = covering_windows(in_at.row, p.out_h);
    let cols = covering_windows(in_at.col, p.out_w);
    var acc = 0.0;
    for (var i = rows.x; i <= rows.y; i++) {
        for (var j = cols.x; j <= cols.y; j++) {
            let out = (in_at.plane * p.out_h + i) * p.out_w + j;
            if bwd_argmax[out] == here {
                acc += bwd_dy[out];
            }
        }
    }
    bwd_dx[idx] = acc;
}
