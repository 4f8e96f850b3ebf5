// linear.wgsl — fully connected layer (torch.nn.Linear): y = x Wᵀ + b.
//
// Layout: x [N, IN], W [OUT, IN], b [OUT], y [N, OUT].
// Forward:          y[n,o]  = b[o] + Σ_i x[n,i] · W[o,i]   (then ReLU'd, common.wgsl's relu, when relu = 1:
//                   the ReLU layer after it fused in)
// Input gradient:   dx[n,i] = Σ_o dy[n,o] · W[o,i]
// Weight gradient:  dW[o,i] += Σ_n dy[n,o] · x[n,i]
// Bias gradient:    db[o]  += Σ_n dy[n,o]
//
// W may exceed one storage binding (FC6: 9216×4096 f32 = 151 MB), so the host binds it as
// row slices: one dispatch covers rows [row_offset, row_offset + rows). The weight binding
// (and dW's) then holds only those rows; the input gradient of slice k > 0 is added to the
// partial sums of the slices before it (`accumulate` = 1).
//
// Bindings (group 0): 0 = params (uniform), then
//   linear_forward(_gemv):   1 x, 2 W rows, 3 b, 4 y
//   linear_backward_input:   1 dy, 2 W rows, 3 dx
//   linear_backward_weight:  1 dy, 2 x, 3 dW rows
//   linear_backward_bias:    1 dy, 2 db
// One invocation per output element of the entry point (but linear_forward_gemv, below).
// Under mixed precision every product's operands are rounded to f16 (f16_rounding.wgsl's
// operand(), as the GEMM rounds them); the bias gradient sums dy in f32, unrounded.

// Long dot products are summed in blocks of BLOCK terms, then the block sums added: the
// rounding error grows with BLOCK + n/BLOCK instead of n (FC6 sums 9216 terms).
const BLOCK: u32 = 64u;

struct LinearParams {
    batch: u32,
    in_features: u32,
    out_features: u32,
    row_offset: u32,
    rows: u32,
    accumulate: u32,
    // The forwards only: apply ReLU to y.
    relu: u32,
}

@group(0) @binding(0) var<uniform> p: LinearParams;

@group(0) @binding(1) var<storage, read> fwd_x: array<f32>;
@group(0) @binding(2) var<storage, read> fwd_w: array<f32>;
@group(0) @binding(3) var<storage, read> fwd_b: array<f32>;
@group(0) @binding(4) var<storage, read_write> fwd_y: array<f32>;

// y's value from its pre-activation.
fn forward_output(v: f32) -> f32 {
    return select(v, relu(v), p.relu != 0u);
}

@compute @workgroup_size(WG)
fn linear_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let idx = flat_index(gid, nwg);
    if idx >= p.batch * p.rows {
        return;
    }
    let r = idx % p.rows;
    let n = idx / p.rows;
    let o = p.row_offset + r;
    var acc = 0.0;
    var block = 0.0;
    for (var i = 0u; i < p.in_features; i++) {
        block += operand(fwd_x[n * p.in_features + i]) * operand(fwd_w[r * p.in_features + i]);
        if i % BLOCK == BLOCK - 1u {
            acc += block;
            block = 0.0;
        }
    }
    fwd_y[n * p.out_features + o] = forward_output(fwd_b[o] + (acc + block));
}

// linear_forward for small batches, as matrix-vector products: one workgroup per weight row
// reads that row once, coalesced, for up to GEMV_BATCH images at a time; each invocation sums
// a strided share of the row, then the shares are tree-reduced in workgroup memory. Launched
// as a grid of rows (workgroup x + y · num_workgroups.x); binds like linear_forward.
// Invocations per row: a whole row of FC7/FC8 in few strides; 256 fits every device.
const GEMV_WG: u32 = 256u;
// Images per pass over the row: the accumulators each invocation holds in registers.
const GEMV_BATCH: u32 = 8u;
var<workgroup> gemv_sums: array<f32, GEMV_BATCH * GEMV_WG>; // [GEMV_BATCH][GEMV_WG]

@compute @workgroup_size(GEMV_WG)
fn linear_forward_gemv(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
    let r = wid.x + wid.y * nwg.x;
    if r >= p.rows {
        return;
    }
    let o = p.row_offset + r;
    for (var n0 = 0u; n0 < p.batch; n0 += GEMV_BATCH) {
        var acc: array<f32, GEMV_BATCH>;
        for (var i = lid; i < p.in_features; i += GEMV_WG) {
            let w = operand(fwd_w[r * p.in_features + i]);
            for (var j = 0u; j < GEMV_BATCH; j++) {
                let n = min(n0 + j, p.batch - 1u);
                acc[j] += operand(fwd_x[n * p.in_features + i]) * w;
            }
        }
        for (var j = 0u; j < GEMV_BATCH; j++) {
            gemv_sums[j * GEMV_WG + lid] = acc[j];
        }
        workgroupBarrier();
        for (var width = GEMV_WG / 2u; width > 0u; width /= 2u) {
            if lid < width {
                for (var j = 0u; j < GEMV_BATCH; j++) {
                    gemv_sums[j * GEMV_WG + lid] += gemv_sums[j * GEMV_WG + lid + width];
                }
            }
            workgroupBarrier();
        }
        if lid < GEMV_BATCH && n0 + lid < p.batch {
            fwd_y[(n0 + lid) * p.out_features + o] = forward_output(fwd_b[o] + gemv_sums[lid * GEMV_WG]);
        }
        workgroupBarrier();
    }
}

@group(0) @binding(1) var<storage, read> bin_dy: array<f32>;
@group(0) @binding(2) var<storage, read> bin_w: array<f32>;
@group(0) @binding(3) var<storage, read_write> bin_dx: array<f32>;

@compute @workgroup_size(WG)
fn linear_backward_input(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let idx = flat_index(gid, nwg);
    if idx >= p.batch * p.in_features {
        return;
    }
    let i = idx % p.in_features;
    let n = idx / p.in_features;
    var acc = 0.0;
    var block = 0.0;
    for (var r = 0u; r < p.rows; r++) {
        block += operand(bin_dy[n * p.out_features + p.row_offset + r]) * operand(bin_w[r * p.in_features + i]);
        if r % BLOCK == BLOCK - 1u {
            acc += block;
            block = 0.0;
        }
    }
    acc += block;
    if p.accumulate != 0u {
        acc += bin_dx[idx];
    }
    bin_dx[idx] = acc;
}

@group(0) @binding(1) var<storage, read> bw_dy: array<f32>;
@group(0) @binding(2) var<storage, read> bw_x: array<f32>;
@group(0) @binding(3) var<storage, read_write> bw_dw: array<f32>;

@compute @workgroup_size(WG)
fn linear_backward_weight(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let idx = flat_index(gid, nwg);
    if idx >= p.rows * p.in_features {
        return;
    }
    let i = idx % p.in_features;
    let o = p.row_offset + idx / p.in_features;
    var acc = 0.0;
    for (var n = 0u; n < p.batch; n++) {
        acc += operand(bw_dy[n * p.out_features + o]) * operand(bw_x[n * p.in_features + i]);
    }
    bw_dw[idx] += acc;
}

@group(0) @binding(1) var<storage, read> bb_dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> bb_db: array<f32>;

@compute @workgroup_size(WG)
fn linear_backward_bias(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let o = flat_index(gid, nwg);
    if o >= p.out_features {
        return;
    }
    var acc = 0.0;
    for (var n = 0u; n < p.batch; n++) {
        acc += bb_dy[n * p.out_features + o];
    }
    bb_db[o] += acc;
}
