// cross_entropy.wgsl — softmax cross-entropy, mean over the batch (torch.nn.CrossEntropyLoss),
// with top-1 / top-5 hits counted on the GPU.
//
// Layout: logits, dlogits [N, K]; labels [N] (u32); stats [N, 3] = (loss, top-1 hit, top-5
// hit) per sample; totals [8] (see below).
// A label of 0xFFFFFFFF marks a padding sample (a last, partial batch): it is ignored, as
// PyTorch's ignore_index — no loss, no gradient, not counted — and the mean is over the V
// valid samples. Any other label ≥ K gives loss NaN, so a bad label cannot train silently.
// Per valid sample, with m = max_k z[k] (so exp never overflows):
//   loss[n]  = (m − z[label]) + log Σ_k exp(z[k] − m)
//   dz[n,k]  = (exp(z[k] − m) / Σ_j exp(z[j] − m) − [k = label]) / V   (gradient of the mean)
//   rank     = #{k : z[k] > z[label]};  top-1 hit = rank < 1, top-5 hit = rank < 5
// Softmax as exp(z − m)/Σ and the loss as (m − z) + log Σ avoid subtracting two numbers of
// the logits' size after adding a small one (for logits near 1000 that costs ~1e-4).
// The reduction (one invocation) writes the batch mean to totals[0] and adds, for periodic
// readback without a per-step stall: Σ loss → [1], top-1 hits → [2], top-5 hits → [3],
// valid samples → [4], 1 step → [5].
//
// Bindings (group 0): 0 = params (uniform), then
//   cross_entropy_forward:  1 logits, 2 labels, 3 stats, 4 dlogits
//   cross_entropy_reduce:   1 stats, 2 labels, 3 totals

const IGNORE: u32 = 0xffffffffu;

struct CrossEntropyParams {
    batch: u32,
    classes: u32,
}

@group(0) @binding(0) var<uniform> p: CrossEntropyParams;

@group(0) @binding(1) var<storage, read> fwd_logits: array<f32>;
@group(0) @binding(2) var<storage, read> fwd_labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> fwd_stats: array<f32>;
@group(0) @binding(4) var<storage, read_write> fwd_dlogits: array<f32>;

@compute @workgroup_size(WG)
fn cross_entropy_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let n = flat_index(gid, nwg);
    if n >= p.batch {
        return;
    }
    let row = n * p.classes;
    let label = fwd_labels[n];
    if label == IGNORE {
        for (var k = 0u; k < p.classes; k++) {
            fwd_dlogits[row + k] = 0.0;
        }
        fwd_stats[n * 3u] = 0.0;
        fwd_stats[n * 3u + 1u] = 0.0;
        fwd_stats[n * 3u + 2u] = 0.0;
        return;
    }
    var valid = 0u;
    for (var j = 0u; j < p.batch; j++) {
        valid += select(0u, 1u, fwd_labels[j] != IGNORE);
    }
    var m = fwd_logits[row];
    for (var k = 1u; k < p.classes; k++) {
        m = max(m, fwd_logits[row + k]);
    }
    var sum = 0.0;
    for (var k = 0u; k < p.classes; k++) {
        sum += exp(fwd_logits[row + k] - m);
    }
    let inv_sum = 1.0 / sum;
    let inv_valid = 1.0 / f32(valid);
    for (var k = 0u; k < p.classes; k++) {
        let target_k = select(0.0, 1.0, k == label);
        fwd_dlogits[row + k] = (exp(fwd_logits[row + k] - m) * inv_sum - target_k) * inv_valid;
    }
    if label >= p.classes {
        fwd_stats[n * 3u] = bitcast<f32>(0x7fc00000u);
        fwd_stats[n * 3u + 1u] = 0.0;
        fwd_stats[n * 3u + 2u] = 0.0;
        return;
    }
    let z = fwd_logits[row + label];
    var rank = 0u;
    for (var k = 0u; k < p.classes; k++) {
        rank += select(0u, 1u, fwd_logits[row + k] > z);
    }
    fwd_stats[n * 3u] = (m - z) + log(sum);
    fwd_stats[n * 3u + 1u] = select(0.0, 1.0, rank < 1u);
    fwd_stats[n * 3u + 2u] = select(0.0, 1.0, rank < 5u);
}

@group(0) @binding(1) var<storage, read> red_stats: array<f32>;
@group(0) @binding(2) var<storage, read> red_labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> red_totals: array<f32>;

@compute @workgroup_size(1)
fn cross_entropy_reduce() {
    var loss = 0.0;
    var top1 = 0.0;
    var top5 = 0.0;
    var valid = 0.0;
    for (var n = 0u; n < p.batch; n++) {
        if red_labels[n] == IGNORE {
            continue;
        }
        loss += red_stats[n * 3u];
        top1 += red_stats[n * 3u + 1u];
        top5 += red_stats[n * 3u + 2u];
        valid += 1.0;
    }
    red_totals[0] = loss / valid;
    red_totals[1] += loss;
    red_totals[2] += top1;
    red_totals[3] += top5;
    red_totals[4] += valid;
    red_totals[5] += 1.0;
}
