// batch_norm.wgsl — 2-D batch normalisation (torch.nn.BatchNorm2d(C, eps, momentum)), with
// running statistics, in training and evaluation modes, and the training-mode backward.
//
// Layout: x, y, dy, dx [N, C, H, W]; weight, bias, dweight, dbias, running_mean, running_var
// [C]; saved [2, C] = (mean, 1/√(var + eps)) of the last training forward; num_batches [1].
// M = N·H·W values per channel.
//
// Training forward (one workgroup per channel):
//   mean = Σx / M;  var = Σ(x − mean)² / M   (biased, two passes for accuracy)
//   y = (x − mean) · rsqrt(var + eps) · weight + bias
//   running_mean = (1 − momentum) · running_mean + momentum · mean
//   running_var  = (1 − momentum) · running_var  + momentum · var · M / (M − 1)   (unbiased,
//   as PyTorch); num_batches += 1. Saves mean and the inverse std for the backward.
// Evaluation forward (one invocation per element):
//   y = (x − running_mean) · rsqrt(running_var + eps) · weight + bias
// Training backward (one workgroup per channel), with x̂ = (x − mean) · inv_std:
//   dbias += Σdy;  dweight += Σ dy·x̂
//   dx = weight · inv_std / M · (M·dy − Σdy − x̂ · Σ dy·x̂)
// Sums are per-thread strided loops then tree_sum.wgsl: deterministic (no atomics),
// the same bits on every run.
//
// Bindings (group 0): 0 = params (uniform), then
//   batch_norm_train_forward:  1 x, 2 weight, 3 bias, 4 y, 5 saved, 6 running_mean,
//                              7 running_var, 8 num_batches
//   batch_norm_eval_forward:   1 x, 2 weight, 3 bias, 4 running_mean, 5 running_var, 6 y
//   batch_norm_backward:       1 x, 2 weight, 3 saved, 4 dy, 5 dx, 6 dweight, 7 dbias
// The per-channel kernels use a workgroup of tree_sum.wgsl's TREE (the tree's width); the
// evaluation forward is one invocation per element with the runtime's WG.

struct BatchNormParams {
    batch: u32,
    channels: u32,
    // H · W
    plane: u32,
    momentum: f32,
    eps: f32,
}

@group(0) @binding(0) var<uniform> p: BatchNormParams;

// Index of the e-th value (0 ≤ e < M) of channel c.
fn at(c: u32, e: u32) -> u32 {
    let n = e / p.plane;
    return (n * p.channels + c) * p.plane + e % p.plane;
}

@group(0) @binding(1) var<storage, read> tf_x: array<f32>;
@group(0) @binding(2) var<storage, read> tf_weight: array<f32>;
@group(0) @binding(3) var<storage, read> tf_bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> tf_y: array<f32>;
@group(0) @binding(5) var<storage, read_write> tf_saved: array<f32>;
@group(0) @binding(6) var<storage, read_write> tf_running_mean: array<f32>;
@group(0) @binding(7) var<storage, read_write> tf_running_var: array<f32>;
@group(0) @binding(8) var<storage, read_write> tf_num_batches: array<f32>;

@compute @workgroup_size(TREE)
fn batch_norm_train_forward(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) t: u32) {
    let c = wid.x;
    let m = p.batch * p.plane;
    var s = 0.0;
    for (var e = t; e < m; e += TREE) {
        s += tf_x[at(c, e)];
    }
    let mean = tree_sum(t, s) / f32(m);
    var q = 0.0;
    for (var e = t; e < m; e += TREE) {
        let d = tf_x[at(c, e)] - mean;
        q += d * d;
    }
    let variance = tree_sum(t, q) / f32(m);
    let inv_std = inverseSqrt(variance + p.eps);
    let scale = tf_weight[c] * inv_std;
    let shift = tf_bias[c] - mean * scale;
    for (var e = t; e < m; e += TREE) {
        let i = at(c, e);
        tf_y[i] = tf_x[i] * scale + shift;
    }
    if t == 0u {
        tf_saved[c] = mean;
        tf_saved[p.channels + c] = inv_std;
        // M = 1 has no unbiased variance; PyTorch refuses that batch, the host check does too.
        let unbiased = variance * f32(m) / f32(max(m, 2u) - 1u);
        tf_running_mean[c] = (1.0 - p.momentum) * tf_running_mean[c] + p.momentum * mean;
        tf_running_var[c] = (1.0 - p.momentum) * tf_running_var[c] + p.momentum * unbiased;
        if c == 0u {
            tf_num_batches[0] += 1.0;
        }
    }
}

@group(0) @binding(1) var<storage, read> ef_x: array<f32>;
@group(0) @binding(2) var<storage, read> ef_weight: array<f32>;
@group(0) @binding(3) var<storage, read> ef_bias: array<f32>;
@group(0) @binding(4) var<storage, read> ef_running_mean: array<f32>;
@group(0) @binding(5) var<storage, read> ef_running_var: array<f32>;
@group(0) @binding(6) var<storage, read_write> ef_y: array<f32>;

@compute @workgroup_size(WG)
fn batch_norm_eval_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let i = flat_index(gid, nwg);
    if i >= p.batch * p.channels * p.plane {
        return;
    }
    let c = (i / p.plane) % p.channels;
    let scale = ef_weight[c] * inverseSqrt(ef_running_var[c] + p.eps);
    ef_y[i] = (ef_x[i] - ef_running_mean[c]) * scale + ef_bias[c];
}

@group(0) @binding(1) var<storage, read> b_x: array<f32>;
@group(0) @binding(2) var<storage, read> b_weight: array<f32>;
@group(0) @binding(3) var<storage, read> b_saved: array<f32>;
@group(0) @binding(4) var<storage, read> b_dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> b_dx: array<f32>;
@group(0) @binding(6) var<storage, read_write> b_dweight: array<f32>;
@group(0) @binding(7) var<storage, read_write> b_dbias: array<f32>;

@compute @workgroup_size(TREE)
fn batch_norm_backward(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) t: u32) {
    let c = wid.x;
    let m = p.batch * p.plane;
    let mean = b_saved[c];
    let inv_std = b_saved[p.channels + c];
    var s = 0.0;
    var sx = 0.0;
    for (var e = t; e < m; e += TREE) {
        let i = at(c, e);
        let dy = b_dy[i];
        s += dy;
        sx += dy * (b_x[i] - mean) * inv_std;
    }
    let sum_dy = tree_sum(t, s);
    let sum_dy_xhat = tree_sum(t, sx);
    let k = b_weight[c] * inv_std / f32(m);
    for (var e = t; e < m; e += TREE) {
        let i = at(c, e);
        let xhat = (b_x[i] - mean) * inv_std;
        b_dx[i] = k * (f32(m) * b_dy[i] - sum_dy - xhat * sum_dy_xhat);
    }
    if t == 0u {
        b_dweight[c] += sum_dy_xhat;
        b_dbias[c] += sum_dy;
    }
}
