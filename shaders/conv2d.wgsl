// conv2d.wgsl — 2-D convolution with stride, zero padding, groups and bias (torch.nn.Conv2d).
//
// Layouts (row-major, f32):
//   x  [N, C, H, W]            input
//   w  [O, C/G, KH, KW]        weight; output channel o belongs to group g = o / (O/G)
//   b  [O]                     bias
//   y  [N, O, OH, OW]          OH = (H + 2P - KH) / S + 1, likewise OW
//
// Forward:         y[n,o,i,j] = b[o] + Σ_{c,p,q} x[n, g·C/G + c, i·S + p − P, j·S + q − P] · w[o,c,p,q]
//                  (x outside the image is 0); then ReLU'd (common.wgsl's relu) when relu = 1, the ReLU
//                  layer after the convolution fused into it
// Input gradient:  dx[n,c,h,v] = Σ over (o in c's group, p, q) with h + P − p = i·S, v + P − q = j·S
//                  of dy[n,o,i,j] · w[o, c mod C/G, p, q]          (assigned)
// Weight gradient: dw[o,c,p,q] += Σ_{n,i,j} dy[n,o,i,j] · x[n, g·C/G + c, i·S + p − P, j·S + q − P]
// Bias gradient:   db[o]      += Σ_{n,i,j} dy[n,o,i,j]
// Parameter gradients are added (+=) so a batch may be split into micro-batches.
//
// Bindings (group 0): 0 = params (uniform) in every entry point, then
//   conv2d_forward:          1 x, 2 w, 3 b, 4 y
//   conv2d_backward_input:   1 dy, 2 w, 3 dx
//   conv2d_backward_weight:  1 dy, 2 x, 3 dw
//   conv2d_backward_bias:    1 dy, 2 db
// One invocation per output element; flat index from common.wgsl's
// flat_index.

struct Conv2dParams {
    batch: u32,
    in_channels: u32,
    in_h: u32,
    in_w: u32,
    out_channels: u32,
    out_h: u32,
    out_w: u32,
    kernel_h: u32,
    kernel_w: u32,
    stride: u32,
    padding: u32,
    groups: u32,
    // conv2d_forward only: apply ReLU to y.
    relu: u32,
}

@group(0) @binding(0) var<uniform> p: Conv2dParams;

@group(0) @binding(1) var<storage, read> fwd_x: array<f32>;
@group(0) @binding(2) var<storage, read> fwd_w: array<f32>;
@group(0) @binding(3) var<storage, read> fwd_b: array<f32>;
@group(0) @binding(4) var<storage, read_write> fwd_y: array<f32>;

@compute @workgroup_size(WG)
fn conv2d_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let idx = flat_index(gid, nwg);
    if idx >= p.batch * p.out_channels * p.out_h * p.out_w {
        return;
    }
    let j = idx % p.out_w;
    let i = (idx / p.out_w) % p.out_h;
    let o = (idx / (p.out_w * p.out_h)) % p.out_channels;
    let n = idx / (p.out_w * p.out_h * p.out_channels);
    let cin_g = p.in_channels / p.groups;
    let g = o / (p.out_channels / p.groups);
    var acc = fwd_b[o];
    for (var c = 0u; c < cin_g; c++) {
        let x_plane = (n * p.in_channels + g * cin_g + c) * p.in_h;
        let w_plane = (o * cin_g + c) * p.kernel_h;
        for (var kh = 0u; kh < p.kernel_h; kh++) {
            let h = i32(i * p.stride + kh) - i32(p.padding);
            if h < 0 || h >= i32(p.in_h) {
                continue;
            }
            for (var kw = 0u; kw < p.kernel_w; kw++) {
                let v = i32(j * p.stride + kw) - i32(p.padding);
                if v < 0 || v >= i32(p.in_w) {
                    continue;
                }
                acc += fwd_x[(x_plane + u32(h)) * p.in_w + u32(v)] * fwd_w[(w_plane + kh) * p.kernel_w + kw];
            }
        }
    }
    if p.relu != 0u {
        acc = relu(acc);
    }
    fwd_y[idx] = acc;
}

@group(0) @binding(1) var<storage, read> bin_dy: array<f32>;
@group(0) @binding(2) var<storage, read> bin_w: array<f32>;
@group(0) @binding(3) var<storage, read_write> bin_dx: array<f32>;

@compute @workgroup_size(WG)
fn conv2d_backward_input(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let idx = flat_index(gid, nwg);
    if idx >= p.batch * p.in_channels * p.in_h * p.in_w {
        return;
    }
    let v = idx % p.in_w;
    let h = (idx / p.in_w) % p.in_h;
    let c = (idx / (p.in_w * p.in_h)) % p.in_channels;
    let n = idx / (p.in_w * p.in_h * p.in_channels);
    let cin_g = p.in_channels / p.groups;
    let cout_g = p.out_channels / p.groups;
    let g = c / cin_g;
    let ci = c % cin_g;
    var acc = 0.0;
    for (var kh = 0u; kh < p.kernel_h; kh++) {
        // Output row i reads input row h through tap kh when i·S = h + P − kh.
        let t = i32(h + p.padding) - i32(kh);
        if t < 0 || u32(t) % p.stride != 0u || u32(t) / p.stride >= p.out_h {
            continue;
        }
        let i = u32(t) / p.stride;
        for (var kw = 0u; kw < p.kernel_w; kw++) {
            let s = i32(v + p.padding) - i32(kw);
            if s < 0 || u32(s) % p.stride != 0u || u32(s) / p.stride >= p.out_w {
                continue;
            }
            let j = u32(s) / p.stride;
            for (var oc = 0u; oc < cout_g; oc++) {
                let o = g * cout_g + oc;
                acc += bin_dy[((n * p.out_channels + o) * p.out_h + i) * p.out_w + j]
                    * bin_w[((o * cin_g + ci) * p.kernel_h + kh) * p.kernel_w + kw];
            }
        }
    }
    bin_dx[idx] = acc;
}

@group(0) @binding(1) var<storage, read> bw_dy: array<f32>;
@group(0) @binding(2) var<storage, read> bw_x: array<f32>;
@group(0) @binding(3) var<storage, read_write> bw_dw: array<f32>;

@compute @workgroup_size(WG)
fn conv2d_backward_weight(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let idx = flat_index(gid, nwg);
    let cin_g = p.in_channels / p.groups;
    if idx >= p.out_channels * cin_g * p.kernel_h * p.kernel_w {
        return;
    }
    let kw = idx % p.kernel_w;
    let kh = (idx / p.kernel_w) % p.kernel_h;
    let ci = (idx / (p.kernel_w * p.kernel_h)) % cin_g;
    let o = idx / (p.kernel_w * p.kernel_h * cin_g);
    let c = (o / (p.out_channels / p.groups)) * cin_g + ci;
    var acc = 0.0;
    var row = 0.0;
    for (var n = 0u; n < p.batch; n++) {
        let x_plane = (n * p.in_channels + c) * p.in_h;
        let dy_plane = (n * p.out_channels + o) * p.out_h;
        for (var i = 0u; i < p.out_h; i++) {
            let h = i32(i * p.stride + kh) - i32(p.padding);
            if h < 0 || h >= i32(p.in_h) {
                continue;
            }
            for (var j = 0u; j < p.out_w; j++) {
                let v = i32(j * p.stride + kw) - i32(p.padding);
                if v < 0 || v >= i32(p.in_w) {
                    continue;
                }
                row += bw_dy[(dy_plane + i) * p.out_w + j] * bw_x[(x_plane + u32(h)) * p.in_w + u32(v)];
            }
            // One partial sum per output row keeps the long reduction (N·OH·OW terms, 3025
            // per image for conv1) accurate.
            acc += row;
            row = 0.0;
        }
    }
    bw_dw[idx] += acc;
}

@group(0) @binding(1) var<storage, read> bb_dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> bb_db: array<f32>;

@compute @workgroup_size(WG)
fn conv2d_backward_bias(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let o = flat_index(gid, nwg);
    if o >= p.out_channels {
        return;
    }
    let plane = p.out_h * p.out_w;
    var acc = 0.0;
    for (var n = 0u; n < p.batch; n++) {
        let base = (n * p.out_channels + o) * plane;
        var image = 0.0;
        for (var k = 0u; k < plane; k++) {
            image += bb_dy[base + k];
        }
        acc += image;
    }
    bb_db[o] += acc;
}
