// gemm_direct.wgsl — the implicit GEMM for CPU drivers (lavapipe, llvmpipe): the same
// problem, bindings, grid and sums as gemm.wgsl, with the operands read straight from the
// buffers into registers: no workgroup memory, no barriers. Prepended: f16_rounding.wgsl,
// gemm_operands.wgsl, then one of two snippets for how the lanes get A's elements,
// gemm_direct_subgroup.wgsl (subgroup broadcasts) or gemm_direct_loaded.wgsl (every lane
// loads them).
//
// Why a second SIMT kernel: a CPU driver runs a workgroup as SIMD lanes of a few cores, where
// a barrier is a switch between coroutines and a workgroup-memory load is a per-lane gather,
// while the CPU's caches already do what the tiles in workgroup memory are for. Here each
// workgroup of LANES invocations walks its BM × BN tile of C in blocks of RM rows by
// LANES · CN columns. Every lane needs the same RM elements of A per k (RowBlock, the
// snippet's); column j of the block is n = n0 + j · LANES + lane, so B's loads gather
// neighbouring columns; k advances by counting its digits (next_k_digits), since a CPU driver
// divides integers one lane at a time.
//
// Products are summed in the tiled kernel's order — k ascending, folded into the total every
// SUM_BLOCK terms from the start of the chunk — so both kernels give the same bits.

// Eight lanes, as many as llvmpipe's 256-bit SIMD holds. Each lane keeps RH · LANES rows by CN
// columns of C: the host sets CN by the output's width (fewer columns when C has few: a
// linear layer's batch) and RH so that RH · CN ≤ 4 (`direct_block` in src/ops/gemm.rs), 32
// entries at most. Each k then costs one gather of B per column and one of A per block of
// rows (see the snippets): wider blocks share them over more multiply-adds.
const LANES: u32 = 8u;
override RH: u32 = 1u;
override CN: u32 = 4u;
override RM: u32 = RH * LANES;
// The most entries per lane, and the most of each factor: the register arrays' sizes.
const MAX_ENTRIES: u32 = 32u;
const MAX_RH: u32 = 4u;
const MAX_CN: u32 = 4u;

// Not used here: fetch and next_tile in gemm_operands.wgsl name it (the tiled kernels' k
// terms), and WGSL resolves every function's identifiers.
var<workgroup> k_info: array<vec4<i32>, 2u * BK>;

// A[m, k] from m's row term and k's A offset; 0 where the row is outside A (term −1).
fn a_element(term: i32, offset: i32) -> f32 {
    return select(0.0, operand(a_src[u32(max(term, 0) + offset)]), term >= 0);
}

// The RM × CN block of C at rows m0.. and columns n0 + j · LANES + lane, summed over k in
// [k_begin, k_end): entry (i, j) is block[i · CN + j].
fn multiply_direct(mode: u32, g: u32, m0: u32, n0: u32, lane: Lane, k_begin: u32, k_end: u32) -> array<f32, MAX_ENTRIES> {
    let size = extent(mode);
    var rows: array<RowBlock, MAX_RH>;
    for (var h = 0u; h < RH; h++) {
        rows[h] = row_block(mode, g, m0 + h * LANES, lane);
    }
    var b_ok: array<bool, MAX_CN>;
    var b_columns: array<vec4<i32>, MAX_CN>;
    for (var j = 0u; j < CN; j++) {
        let n = n0 + j * LANES + lane.index;
        b_ok[j] = n < size.y;
        b_columns[j] = column_terms(mode, g, min(n, size.y - 1u));
    }
    var acc: array<f32, MAX_ENTRIES>;
    var part: array<f32, MAX_ENTRIES>;
    var digits = k_digits(mode, k_begin);
    var summed = 0u;
    for (var k = k_begin; k < k_end; k++) {
        let kt = k_terms_of(mode, g, k, digits);
        var b: array<f32, MAX_CN>;
        for (var j = 0u; j < CN; j++) {
            b[j] = select(0.0, operand(element_b(mode, kt, b_columns[j])), b_ok[j]);
        }
        for (var h = 0u; h < RH; h++) {
            let a = row_block_values(rows[h], kt.x);
            for (var t = 0u; t < LANES; t++) {
                let i = h * LANES + t;
                for (var j = 0u; j < CN; j++) {
                    part[i * CN + j] = fma(a[t], b[j], part[i * CN + j]);
                }
            }
        }
        digits = next_k_digits(mode, digits);
        summed += 1u;
        if summed == SUM_BLOCK {
            summed = 0u;
            for (var e = 0u; e < RM * CN; e++) {
                acc[e] += part[e];
                part[e] = 0.0;
            }
        }
    }
    for (var e = 0u; e < RM * CN; e++) {
        acc[e] += part[e];
    }
    return acc;
}

// Blocks of a tile: down × across, across first.
fn blocks_across() -> u32 {
    return (BN + LANES * CN - 1u) / (LANES * CN);
}

fn blocks() -> u32 {
    return (BM + RM - 1u) / RM * blocks_across();
}

// Where block `block` of tile `tile` starts, (m, n).
fn block_origin(tile: vec2u, block: u32) -> vec2u {
    let across = blocks_across();
    return vec2u(tile.y * BM + (block / across) * RM, tile.x * BN + (block % across) * LANES * CN);
}

// Whether a block starting at `origin` holds any of C's entries (uniform: skipped whole).
fn block_in(mode: u32, origin: vec2u) -> bool {
    let size = extent(mode);
    return origin.x < size.x && origin.y < size.y;
}

// Entry e of this invocation's block, (m, n); past the tile's end (where BM or BN is not a
// multiple of the block) it is the next tile's, so it is moved out of C, where the stores
// skip it.
fn entry(tile: vec2u, origin: vec2u, lane: Lane, e: u32) -> vec2u {
    let mn = vec2u(origin.x + e / CN, origin.y + (e % CN) * LANES + lane.index);
    let inside = mn.x < (tile.y + 1u) * BM && mn.y < (tile.x + 1u) * BN;
    return select(vec2u(0xffffffffu), mn, inside);
}

// Every block of this lane's workgroup's tile, over the k range of split s (workgroup z =
// g·k_split + s; the input gradient is never split, its k_split is 1).
fn multiply_tile(mode: u32, lane: Lane) {
    let wid = lane.workgroup;
    let g = wid.z / p.k_split;
    let s = wid.z % p.k_split;
    let range = split_range(s, extent(mode).z);
    for (var block = 0u; block < blocks(); block++) {
        let origin = block_origin(wid.xy, block);
        if !block_in(mode, origin) {
            continue;
        }
        let c = multiply_direct(mode, g, origin.x, origin.y, lane, range.x, range.y);
        for (var e = 0u; e < RM * CN; e++) {
            store(mode, g, s, entry(wid.xy, origin, lane, e), c[e]);
        }
    }
}

@compute @workgroup_size(LANES)
fn gemm_forward(lane: Lane) {
    multiply_tile(FORWARD, lane);
}

@compute @workgroup_size(LANES)
fn gemm_backward_input(lane: Lane) {
    multiply_tile(BACKWARD_INPUT, lane);
}

@compute @workgroup_size(LANES)
fn gemm_backward_weight(lane: Lane) {
    multiply_tile(BACKWARD_WEIGHT, lane);
}
