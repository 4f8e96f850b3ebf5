// dropout.wgsl — inverted dropout (torch.nn.Dropout in training mode), elementwise.
//
// keep(i) = pcg_hash(i ^ pcg_hash(seed ^ salt)) >= threshold,  threshold = ⌊p · 2³²⌋
// Forward:   y[i]  = keep(i) ? x[i] · scale : 0,   scale = 1 / (1 − p)
// Backward:  dx[i] = keep(i) ? dy[i] · scale : 0   (the same mask: same seed, same counter)
// The mask is a pure function of (seed, salt, index) — a counter-based hash, no state, no
// stored mask. `seed` changes every step (a uniform the host rewrites); `salt` tells the
// layers apart. In evaluation the model does not dispatch dropout at all (identity).
//
// Bindings (group 0): 0 = params (uniform), 1 = step seed (uniform), then
//   dropout_forward:   2 x, 3 y
//   dropout_backward:  2 dy, 3 dx
// One invocation per element; flat index from common.wgsl's flat_index.

struct DropoutParams {
    len: u32,
    salt: u32,
    threshold: u32,
    scale: f32,
}

struct StepSeed {
    seed: u32,
}

@group(0) @binding(0) var<uniform> p: DropoutParams;
@group(0) @binding(1) var<uniform> step: StepSeed;

// PCG-RXS-M-XS 32-bit output permutation (O'Neill), used as a stateless hash.
fn pcg_hash(v: u32) -> u32 {
    let state = v * 747796405u + 2891336453u;
    let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

fn keep(i: u32) -> bool {
    return pcg_hash(i ^ pcg_hash(step.seed ^ p.salt)) >= p.threshold;
}

@group(0) @binding(2) var<storage, read> fwd_x: array<f32>;
@group(0) @binding(3) var<storage, read_write> fwd_y: array<f32>;

@compute @workgroup_size(WG)
fn dropout_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let i = flat_index(gid, nwg);
    if i >= p.len {
        return;
    }
    fwd_y[i] = select(0.0, fwd_x[i] * p.scale, keep(i));
}

@group(0) @binding(2) var<storage, read> bwd_dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> bwd_dx: array<f32>;

@compute @workgroup_size(WG)
fn dropout_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let i = flat_index(gid, nwg);
    if i >= p.len {
        return;
    }
    bwd_dx[i] = select(0.0, bwd_dy[i] * p.scale, keep(i));
}
