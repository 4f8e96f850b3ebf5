// finite.wgsl — non-finite detection for training: is any element of a tensor NaN or ±Inf?
//
// check_finite:  if any x[i] (0 <= i < len) is NaN or ±Inf,
//                    flags[slot] = min(flags[slot], step)          (atomicMin)
// The host fills flags with 0xFFFFFFFF ("never seen"), records one dispatch per checked
// tensor (the loss totals and every parameter gradient, each with its own slot) into every
// training step, and reads flags with the periodic metrics. So there is no readback per step,
// and a flag holds the FIRST step at which its tensor went non-finite. The result is
// deterministic: min is order-independent, whatever the order the workgroups run in.
//
// A value is non-finite when its exponent bits are all ones. Testing the bits, not `x != x`,
// keeps the check from being folded away by compilers that assume NaN never occurs.
// Each workgroup first votes (workgroup_any.wgsl), and
// only one invocation per workgroup touches the global flag, so a tensor that is NaN
// everywhere costs one atomic per workgroup, not one per element.
//
// Bindings (group 0): 0 = params (uniform: len, slot), 1 = step (uniform: step),
//   check_finite: 2 x (f32, one binding-sized slice of the tensor), 3 flags (atomic u32)
// One invocation per element; flat index from common.wgsl's flat_index.

struct FiniteParams {
    len: u32,
    slot: u32,
}

struct FiniteStep {
    step: u32,
}

@group(0) @binding(0) var<uniform> p: FiniteParams;
@group(0) @binding(1) var<uniform> current: FiniteStep;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> flags: array<atomic<u32>>;

@compute @workgroup_size(WG)
fn check_finite(
    @builtin(global_invocation_id) gid: vec3u,
    @builtin(local_invocation_index) lid: u32,
    @builtin(num_workgroups) nwg: vec3u,
) {
    let i = flat_index(gid, nwg);
    // No early return: every invocation takes part in the vote.
    let bad = workgroup_any(lid, i < p.len && !is_finite(x[i]));
    if lid == 0u && bad {
        atomicMin(&flags[p.slot], current.step);
    }
}
