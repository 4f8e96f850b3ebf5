// cross_entropy.wgsl — softmax cross-entropy, mean over the batch (torch.nn.CrossEntropyLoss).
//
// Layout: logits, dlogits [N, K]; labels [N] (u32); losses [N]; totals [4].
// Per sample, with m = max_k z[k] (so exp never overflows):
//   loss[n]  = (m − z[label]) + log Σ_k exp(z[k] − m)
//   dz[n,k]  = (exp(z[k] − m) / Σ_j exp(z[j] − m) − [k = label]) / N   (gradient of the mean loss)
// A label ≥ K gives loss NaN, so a bad label cannot train silently.
// The reduction writes the batch mean to totals[0] and adds, for periodic readback without a
// per-step stall, the mean to totals[1], 1 to totals[2] and the number of samples whose
// arg-max logit equals the label to totals[3].
//
// Bindings (group 0): 0 = params (uniform), then
//   cross_entropy_forward:  1 logits, 2 labels, 3 losses, 4 dlogits
//   cross_entropy_reduce:   1 losses, 2 totals   (a single invocation)

override WG: u32 = 64u;

struct CrossEntropyParams {
    batch: u32,
    classes: u32,
}

@group(0) @binding(0) var<uniform> p: CrossEntropyParams;

@group(0) @binding(1) var<storage, read> fwd_logits: array<f32>;
@group(0) @binding(2) var<storage, read> fwd_labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> fwd_losses: array<f32>;
@group(0) @binding(4) var<storage, read_write> fwd_dlogits: array<f32>;

@compute @workgroup_size(WG)
fn cross_entropy_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let n = gid.x + gid.y * nwg.x * WG;
    if n >= p.batch {
        return;
    }
    let row = n * p.classes;
    let label = fwd_labels[n];
    var m = fwd_logits[row];
    for (var k = 1u; k < p.classes; k++) {
        m = max(m, fwd_logits[row + k]);
    }
    var sum = 0.0;
    for (var k = 0u; k < p.classes; k++) {
        sum += exp(fwd_logits[row + k] - m);
    }
    // Softmax as exp(z − m) / Σ, and the loss as (m − z[label]) + log Σ: both avoid
    // subtracting two numbers of the logits' size after adding a small one (for logits
    // near 1000 that would cost ~1e-4 relative).
    let inv_sum = 1.0 / sum;
    let inv_batch = 1.0 / f32(p.batch);
    for (var k = 0u; k < p.classes; k++) {
        let target_k = select(0.0, 1.0, k == label);
        fwd_dlogits[row + k] = (exp(fwd_logits[row + k] - m) * inv_sum - target_k) * inv_batch;
    }
    if label < p.classes {
        fwd_losses[n] = (m - fwd_logits[row + label]) + log(sum);
    } else {
        fwd_losses[n] = bitcast<f32>(0x7fc00000u);
    }
}

@group(0) @binding(1) var<storage, read> red_losses: array<f32>;
@group(0) @binding(2) var<storage, read_write> red_totals: array<f32>;

@compute @workgroup_size(1)
fn cross_entropy_reduce() {
    var sum = 0.0;
    for (var n = 0u; n < p.batch; n++) {
        sum += red_losses[n];
    }
    let mean = sum / f32(p.batch);
    red_totals[0] = mean;
    red_totals[1] += mean;
    red_totals[2] += 1.0;
}
