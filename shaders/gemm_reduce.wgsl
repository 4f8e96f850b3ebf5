// gemm_reduce.wgsl — the reductions that finish gemm.wgsl's results: the split-K sums (when
// gemm.wgsl splits a long reduction k into `splits` chunks, chunk s writes partial[s]) and
// the bias gradient. Deterministic: fixed summation orders, no atomics.
//
//   gemm_reduce_splits       dw[i] += Σ_s partial[s][i]                     (weight gradient)
//   gemm_reduce_splits_bias  y[i] = Σ_s partial[s][i] + bias[o], ReLU'd if asked, for the
//                            output channels o = (i / plane) % channels in [row_begin,
//                            row_end) that this weight slice owns            (forward)
//   gemm_reduce_bias         db[o] += Σ_{b, pixel} dy[b, o, pixel], one workgroup of TREE
//                            per o, a tree_sum (tree_sum.wgsl)              (bias gradient)
//   gemm_reduce_bias_serial  the same, one invocation per o summing in order (few elements
//                            per channel: a linear layer's batch)
// with partial [splits, count], y and dy [N, channels, plane], count = their element count.
//
// Bindings (group 0): 0 = params (uniform), then
//   gemm_reduce_splits:       1 partial, 2 dw
//   gemm_reduce_splits_bias:  1 partial, 2 bias, 3 y
//   gemm_reduce_bias(_serial): 1 dy, 2 db
// The split sums are one invocation per element (common.wgsl's flat_index).

struct ReduceParams {
    count: u32,
    splits: u32,
    // y's or dy's channels and pixels per channel (not read by gemm_reduce_splits).
    channels: u32,
    plane: u32,
    // gemm_reduce_splits_bias only: the channels this dispatch owns, and whether to ReLU.
    row_begin: u32,
    row_end: u32,
    relu: u32,
}

@group(0) @binding(0) var<uniform> r: ReduceParams;

@group(0) @binding(1) var<storage, read> partial: array<f32>;

// Σ_s partial[s][i], in a fixed order.
fn split_sum(i: u32) -> f32 {
    var sum = 0.0;
    for (var s = 0u; s < r.splits; s++) {
        sum += partial[s * r.count + i];
    }
    return sum;
}

@group(0) @binding(2) var<storage, read_write> rs_dw: array<f32>;

@compute @workgroup_size(WG)
fn gemm_reduce_splits(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let i = flat_index(gid, nwg);
    if i >= r.count {
        return;
    }
    rs_dw[i] += split_sum(i);
}

@group(0) @binding(2) var<storage, read> rb_bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> rb_y: array<f32>;

@compute @workgroup_size(WG)
fn gemm_reduce_splits_bias(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let i = flat_index(gid, nwg);
    if i >= r.count {
        return;
    }
    let o = (i / r.plane) % r.channels;
    if o < r.row_begin || o >= r.row_end {
        return;
    }
    var v = split_sum(i) + rb_bias[o];
    if r.relu != 0u {
        v = relu(v);
    }
    rb_y[i] = v;
}

@group(0) @binding(1) var<storage, read> b_dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> b_db: array<f32>;

@compute @workgroup_size(TREE)
fn gemm_reduce_bias(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
    let o = wid.x;
    let per_channel = r.count / r.channels;
    var sum = 0.0;
    for (var e = lid; e < per_channel; e += TREE) {
        sum += b_dy[((e / r.plane) * r.channels + o) * r.plane + e % r.plane];
    }
    let total = tree_sum(lid, sum);
    if lid == 0u {
        b_db[o] += total;
    }
}

// The same sum where each channel has few elements (a linear layer's batch): one invocation
// per channel, in order, no workgroup tree (its barriers cost most on CPU drivers).
@compute @workgroup_size(WG)
fn gemm_reduce_bias_serial(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let o = flat_index(gid, nwg);
    if o >= r.channels {
        return;
    }
    let per_channel = r.count / r.channels;
    var sum = 0.0;
    for (var e = 0u; e < per_channel; e++) {
        sum += b_dy[((e / r.plane) * r.channels + o) * r.plane + e % r.plane];
    }
    b_db[o] += sum;
}
