// adaptive_avg_pool.wgsl — adaptive average pooling (torch.nn.AdaptiveAvgPool2d((OH, OW))).
//
// Layout: x, dx [N, C, H, W]; y, dy [N, C, OH, OW].
// Output row i averages input rows [floor(i·H/OH), ceil((i+1)·H/OH)), columns likewise; this
// holds for H < OH too, where windows repeat rows.
// Forward:  y[n,c,i,j] = mean of x over the window (i, j)
// Backward: dx[n,c,h,v] = Σ over windows (i,j) containing (h,v) of dy[n,c,i,j] / area(i,j)
//           (a gather over the windows, so each invocation writes only its own element)
//
// Bindings (group 0): 0 = params (uniform), then
//   adaptive_avg_pool_forward:   1 x, 2 y
//   adaptive_avg_pool_backward:  1 dy, 2 dx
// One invocation per output (forward) or input (backward) element.

fn window_start(i: u32, input: u32, output: u32) -> u32 {
    return (i * input) / output;
}

fn window_end(i: u32, input: u32, output: u32) -> u32 {
    return ((i + 1u) * input + output - 1u) / output;
}

@compute @workgroup_size(WG)
fn adaptive_avg_pool_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let idx = flat_index(gid, nwg);
    if idx >= output_count() {
        return;
    }
    let out_at = plane_element(idx, p.out_h, p.out_w);
    let base = out_at.plane * p.in_h * p.in_w;
    let h0 = window_start(out_at.row, p.in_h, p.out_h);
    let h1 = window_end(out_at.row, p.in_h, p.out_h);
    let v0 = window_start(out_at.col, p.in_w, p.out_w);
    let v1 = window_end(out_at.col, p.in_w, p.out_w);
    var sum = 0.0;
    for (var h = h0; h < h1; h++) {
        for (var v = v0; v < v1; v++) {
            sum += fwd_x[base + h * p.in_w + v];
        }
    }
    fwd_y[idx] = sum / f32((h1 - h0) * (v1 - v0));
}

@group(0) @binding(2) var<storage, read_write> bwd_dx: array<f32>;

@compute @workgroup_size(WG)
fn adaptive_avg_pool_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let idx = flat_index(gid, nwg);
    if idx >= input_count() {
        return;
    }
    let in_at = plane_element(idx, p.in_h, p.in_w);
    let h = in_at.row;
    let v = in_at.col;
    let base = in_at.plane * p.out_h * p.out_w;
    var acc = 0.0;
    for (var i = 0u; i < p.out_h; i++) {
        let h0 = window_start(i, p.in_h, p.out_h);
        let h1 = window_end(i, p.in_h, p.out_h);
        if h < h0 || h >= h1 {
            continue;
        }
        for (var j = 0u; j < p.out_w; j++) {
            let v0 = window_start(j, p.in_w, p.out_w);
            let v1 = window_end(j, p.in_w, p.out_w);
            if v < v0 || v >= v1 {
                continue;
            }
            acc += bwd_dy[base + i * p.out_w + j] / f32((h1 - h0) * (v1 - v0));
        }
    }
    bwd_dx[idx] = acc;
}
