// avg_pool.wgsl — 2-D average pooling (torch.nn.AvgPool2d(kernel, stride, padding)), floor
// mode, count_include_pad = True (PyTorch's default): every window divides by K·K, padded
// positions counting as zeros.
//
// Layout: x, dx [N, C, H, W]; y, dy [N, C, OH, OW], OH = (H + 2P − K) / S + 1.
// Forward:  y[n,c,i,j] = (1 / K²) · Σ over the K×K window at (i·S − P, j·S − P) of x (inside)
// Backward: dx[n,c,h,v] = (1 / K²) · Σ over windows (i,j) containing (h,v) of dy[n,c,i,j]
//           Written as a gather over the windows covering each input, so no two invocations
//           write the same element (overlapping windows, K > S, accumulate).
//
// Bindings (group 0): 0 = params (uniform), then
//   avg_pool_forward:   1 x, 2 y
//   avg_pool_backward:  1 dy, 2 dx
// One invocation per output (forward) or input (backward) element.

@compute @workgroup_size(WG)
fn avg_pool_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let idx = flat_index(gid, nwg);
    if idx >= output_count() {
        return;
    }
    let w = fixed_window(idx);
    // Window rows are i·S − P + kh in padded coordinates; compare in those to stay unsigned.
    var acc = 0.0;
    for (var kh = 0u; kh < p.kernel; kh++) {
        let hp = w.top + kh;
        if hp < p.padding || hp >= p.in_h + p.padding {
            continue;
        }
        for (var kw = 0u; kw < p.kernel; kw++) {
            let vp = w.left + kw;
            if vp < p.padding || vp >= p.in_w + p.padding {
                continue;
            }
            acc += fwd_x[w.plane_start + (hp - p.padding) * p.in_w + (vp - p.padding)];
        }
    }
    fwd_y[idx] = acc / f32(p.kernel * p.kernel);
}

@group(0) @binding(2) var<storage, read_write> bwd_dx: array<f32>;

@compute @workgroup_size(WG)
fn avg_pool_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let idx = flat_index(gid, nwg);
    if idx >= input_count() {
        return;
    }
    let in_at = plane_element(idx, p.in_h, p.in_w);
    let rows = covering_windows(in_at.row + p.padding, p.out_h);
    let cols = covering_windows(in_at.col + p.padding, p.out_w);
    var acc = 0.0;
    for (var i = rows.x; i <= rows.y; i++) {
        for (var j = cols.x; j <= cols.y; j++) {
            acc += bwd_dy[(in_at.plane * p.out_h + i) * p.out_w + j];
        }
    }
    bwd_dx[idx] = acc / f32(p.kernel * p.kernel);
}
