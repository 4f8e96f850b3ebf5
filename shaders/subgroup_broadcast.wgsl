// subgroup_broadcast.wgsl — one value from each of a subgroup's first 8 lanes, handed to every
// lane: the way the CPU-driver kernels share an element that every lane needs (a CPU driver
// loads any address that is not a constant lane by lane, so one lane loads each element and
// the others take it from a register). A snippet for shaders that need Features::SUBGROUP
// (gemm_direct_subgroup.wgsl, linear_broadcast.wgsl). No bindings.

// The lanes broadcast8 reads: the workgroup width of the kernels that use it (one subgroup).
const BROADCAST_LANES: u32 = 8u;

// Lane t's value of v, for t = 0 .. 7. Call it in uniform control flow, with a subgroup of at
// least 8 lanes; WGSL wants each broadcast's lane as a constant, hence one call per lane.
fn broadcast8(v: f32) -> array<f32, BROADCAST_LANES> {
    return array<f32, BROADCAST_LANES>(
        subgroupBroadcast(v, 0u),
        subgroupBroadcast(v, 1u),
        subgroupBroadcast(v, 2u),
        subgroupBroadcast(v, 3u),
        subgroupBroadcast(v, 4u),
        subgroupBroadcast(v, 5u),
        subgroupBroadcast(v, 6u),
        subgroupBroadcast(v, 7u),
    );
}
