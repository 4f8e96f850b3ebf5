// loss_scale.wgsl — dynamic loss scaling for mixed-precision training, as torch.amp's
// GradScaler does it, entirely on the GPU (no readback per step):
//
//   scale_gradient  x *= scale                        (the loss gradient, before the backward)
//   unscale_check   g *= 1 / scale; found_inf |= any g non-finite   (each trained gradient)
//   gate            args = found_inf ? 0 : grids      (the optimizer's workgroup counts: its
//                                                      dispatches are indirect, so a step
//                                                      whose gradients overflowed is skipped)
//   update_scale    found_inf: scale *= backoff, good = 0, skipped += 1
//                   else: good += 1, and after growth_interval good steps scale *= growth
//                   (kept only if finite), good = 0;  then found_inf = 0
//
// State (u32[4], see src/ops/loss_scale.rs): [0] the scale's f32 bits, [1] good steps since
// the scale last changed, [2] found_inf of this step, [3] skipped steps in all.
//
// Bindings (group 0): 0 = params (uniform), then
//   scale_gradient: 1 state (read), 2 x
//   unscale_check:  1 state (atomic), 2 grad (one binding-sized slice of it)
//   gate:           1 state (read), 2 grids (u32, 3 per dispatch), 3 args (u32, likewise)
//   update_scale:   1 state
// One invocation per element (update_scale: one); flat index from common.wgsl's flat_index.

struct LossScaleParams {
    len: u32,
    growth_interval: u32,
    growth_factor: f32,
    backoff_factor: f32,
}

const SCALE: u32 = 0u;
const GOOD_STEPS: u32 = 1u;
const FOUND_INF: u32 = 2u;
const SKIPPED: u32 = 3u;

@group(0) @binding(0) var<uniform> p: LossScaleParams;

@group(0) @binding(1) var<storage, read> scale_state: array<u32>;
@group(0) @binding(2) var<storage, read_write> scale_x: array<f32>;

@compute @workgroup_size(WG)
fn scale_gradient(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let i = flat_index(gid, nwg);
    if i < p.len {
        scale_x[i] *= bitcast<f32>(scale_state[SCALE]);
    }
}

@group(0) @binding(1) var<storage, read_write> check_state: array<atomic<u32>>;
@group(0) @binding(2) var<storage, read_write> check_grad: array<f32>;

@compute @workgroup_size(WG)
fn unscale_check(
    @builtin(global_invocation_id) gid: vec3u,
    @builtin(local_invocation_index) lid: u32,
    @builtin(num_workgroups) nwg: vec3u,
) {
    let i = flat_index(gid, nwg);
    var bad = false;
    if i < p.len {
        // A power of two (the scale only ever doubles and halves): the reciprocal is exact.
        let g = check_grad[i] * (1.0 / bitcast<f32>(atomicLoad(&check_state[SCALE])));
        check_grad[i] = g;
        bad = !is_finite(g);
    }
    // No early return above: every invocation takes part in the vote.
    if workgroup_any(lid, bad) && lid == 0u {
        atomicOr(&check_state[FOUND_INF], 1u);
    }
}

@group(0) @binding(1) var<storage, read> gate_state: array<u32>;
@group(0) @binding(2) var<storage, read> gate_grids: array<u32>;
@group(0) @binding(3) var<storage, read_write> gate_args: array<u32>;

@compute @workgroup_size(WG)
fn gate(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let i = flat_index(gid, nwg);
    if i < p.len {
        gate_args[i] = select(gate_grids[i], 0u, gate_state[FOUND_INF] != 0u);
    }
}

@group(0) @binding(1) var<storage, read_write> update_state: array<u32>;

@compute @workgroup_size(1)
fn update_scale() {
    var scale = bitcast<f32>(update_state[SCALE]);
    if update_state[FOUND_INF] != 0u {
        scale *= p.backoff_factor;
        update_state[GOOD_STEPS] = 0u;
        update_state[SKIPPED] += 1u;
    } else {
        let good = update_state[GOOD_STEPS] + 1u;
        update_state[GOOD_STEPS] = good;
        if good >= p.growth_interval {
            let grown = scale * p.growth_factor;
            scale = select(scale, grown, is_finite(grown));
            update_state[GOOD_STEPS] = 0u;
        }
    }
    update_state[SCALE] = bitcast<u32>(scale);
    update_state[FOUND_INF] = 0u;
}
