// gemm_direct_loaded.wgsl — how the direct GEMM's lanes get A's elements where the device has
// no subgroup operations (wgpu's GL backend): each lane loads every row of the block itself,
// the same address in every lane. A snippet between gemm_operands.wgsl and gemm_direct.wgsl;
// gemm_direct_subgroup.wgsl is the other form, with the same names.

// The ids gemm_direct.wgsl's entry points take.
struct Lane {
    @builtin(workgroup_id) workgroup: vec3u,
    @builtin(local_invocation_index) index: u32,
}

// Rows m0 .. m0 + LANES − 1 of A, as this form reads them: every row's term (−1 outside A).
struct RowBlock {
    terms: array<i32, LANES>,
}

fn row_block(mode: u32, g: u32, m0: u32, lane: Lane) -> RowBlock {
    let rows = extent(mode).x;
    var block: RowBlock;
    for (var t = 0u; t < LANES; t++) {
        block.terms[t] = select(-1, row_term(mode, g, m0 + t), m0 + t < rows);
    }
    return block;
}

// A[m0 + t, k] for every t (k's A offset `offset`), 0 outside A.
fn row_block_values(block: RowBlock, offset: i32) -> array<f32, LANES> {
    var values: array<f32, LANES>;
    for (var t = 0u; t < LANES; t++) {
        values[t] = a_element(block.terms[t], offset);
    }
    return values;
}
