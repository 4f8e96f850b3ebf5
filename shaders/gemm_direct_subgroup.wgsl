// gemm_direct_subgroup.wgsl — how the direct GEMM's lanes get A's elements where the device
// has subgroups of at least LANES invocations (the workgroup is then one subgroup): lane t
// loads row m0 + t only, and subgroupBroadcast hands each row to every lane. On a CPU driver
// a load whose address the compiler cannot prove uniform is a gather, one lane at a time, so
// this loads A's block with one gather per k instead of LANES (1.5-2.5x the direct GEMM's
// speed on lavapipe). A snippet between gemm_operands.wgsl (and subgroup_broadcast.wgsl) and
// gemm_direct.wgsl; gemm_direct_loaded.wgsl is the other form, with the same names.

// The ids gemm_direct.wgsl's entry points take; the subgroup's own numbering picks the row.
struct Lane {
    @builtin(workgroup_id) workgroup: vec3u,
    @builtin(local_invocation_index) index: u32,
    @builtin(subgroup_invocation_id) subgroup_index: u32,
}

// Rows m0 .. m0 + LANES − 1 of A, as this form reads them: this lane's row's term (−1
// outside A).
struct RowBlock {
    term: i32,
}

fn row_block(mode: u32, g: u32, m0: u32, lane: Lane) -> RowBlock {
    let m = m0 + lane.subgroup_index;
    return RowBlock(select(-1, row_term(mode, g, m), m < extent(mode).x));
}

// A[m0 + t, k] for every t (k's A offset `offset`), 0 outside A: lane t's element, broadcast
// (subgroup_broadcast.wgsl).
fn row_block_values(block: RowBlock, offset: i32) -> array<f32, LANES> {
    return broadcast8(a_element(block.term, offset));
}
