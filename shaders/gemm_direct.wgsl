// gemm_direct.wgsl — the implicit GEMM for CPU drivers (lavapipe, llvmpipe): the same
// problem, bindings, grid and sums as gemm.wgsl (f16_rounding.wgsl and gemm_operands.wgsl are
// prepended), with the operands read straight from the buffers into registers: no workgroup
// memory, no barriers.
//
// Why a second SIMT kernel: a CPU driver runs a workgroup as SIMD lanes of a few cores, where
// a barrier is a switch between coroutines and a workgroup-memory load is a per-lane gather,
// while the CPU's caches already do what the tiles in workgroup memory are for. Here each
// workgroup of LANES invocations walks its BM × BN tile of C in blocks of RM rows by
// LANES · CN columns. The RM rows are the same for every invocation, so A's loads are uniform
// (one load, broadcast to the lanes); column j of the block is n = n0 + j · LANES + lane, so
// B's loads gather neighbouring columns; k advances by counting its digits (next_k_digits),
// since a CPU driver divides integers one lane at a time.
//
// Products are summed in the tiled kernel's order — k ascending, folded into the total every
// SUM_BLOCK terms from the start of the chunk — so both kernels give the same bits.

// Eight lanes, as many as llvmpipe's 256-bit SIMD holds, and 8 × CN entries per lane: of the
// shapes tried on lavapipe (4 to 16 lanes, 4 or 8 rows by 2 or 4 columns) none trained
// clearly faster, within run-to-run noise of about ±30 %. CN is 4 unless C has fewer
// columns (a linear layer's batch): the host sets it so that few lanes idle.
const LANES: u32 = 8u;
const RM: u32 = 8u;
override CN: u32 = 4u;
// The largest CN: the register arrays are sized for it.
const MAX_CN: u32 = 4u;

// Not used here: fetch and next_tile in gemm_operands.wgsl name it (the tiled kernels' k
// terms), and WGSL resolves every function's identifiers.
var<workgroup> k_info: array<vec4<i32>, 2u * BK>;

// The RM × CN block of C at rows m0.. and columns n0 + j · LANES + lane, summed over k in
// [k_begin, k_end): entry (i, j) is block[i · MAX_CN + j].
fn multiply_direct(mode: u32, g: u32, m0: u32, n0: u32, lane: u32, k_begin: u32, k_end: u32) -> array<f32, RM * MAX_CN> {
    let size = extent(mode);
    var a_rows: array<i32, RM>;
    for (var i = 0u; i < RM; i++) {
        a_rows[i] = select(-1, row_term(mode, g, m0 + i), m0 + i < size.x);
    }
    var b_ok: array<bool, MAX_CN>;
    var b_columns: array<vec4<i32>, MAX_CN>;
    for (var j = 0u; j < CN; j++) {
        let n = n0 + j * LANES + lane;
        b_ok[j] = n < size.y;
        b_columns[j] = column_terms(mode, g, min(n, size.y - 1u));
    }
    var acc: array<f32, RM * MAX_CN>;
    var part: array<f32, RM * MAX_CN>;
    var digits = k_digits(mode, k_begin);
    var summed = 0u;
    for (var k = k_begin; k < k_end; k++) {
        let kt = k_terms_of(mode, g, k, digits);
        var b: array<f32, MAX_CN>;
        for (var j = 0u; j < CN; j++) {
            b[j] = select(0.0, operand(element_b(mode, kt, b_columns[j])), b_ok[j]);
        }
        for (var i = 0u; i < RM; i++) {
            var a = 0.0;
            if a_rows[i] >= 0 {
                a = operand(a_src[u32(a_rows[i] + kt.x)]);
            }
            for (var j = 0u; j < CN; j++) {
                part[i * MAX_CN + j] = fma(a, b[j], part[i * MAX_CN + j]);
            }
        }
        digits = next_k_digits(mode, digits);
        summed += 1u;
        if summed == SUM_BLOCK {
            summed = 0u;
            for (var e = 0u; e < RM * MAX_CN; e++) {
                acc[e] += part[e];
                part[e] = 0.0;
            }
        }
    }
    for (var e = 0u; e < RM * MAX_CN; e++) {
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
fn entry(tile: vec2u, origin: vec2u, lane: u32, e: u32) -> vec2u {
    let mn = vec2u(origin.x + e / MAX_CN, origin.y + (e % MAX_CN) * LANES + lane);
    let inside = mn.x < (tile.y + 1u) * BM && mn.y < (tile.x + 1u) * BN;
    return select(vec2u(0xffffffffu), mn, inside);
}

// Every block of tile wid.xy, over the k range of split s (workgroup z = g·k_split + s; the
// input gradient is never split, its k_split is 1).
fn multiply_tile(mode: u32, wid: vec3u, lane: u32) {
    let g = wid.z / p.k_split;
    let s = wid.z % p.k_split;
    let range = split_range(s, extent(mode).z);
    for (var block = 0u; block < blocks(); block++) {
        let origin = block_origin(wid.xy, block);
        if !block_in(mode, origin) {
            continue;
        }
        let c = multiply_direct(mode, g, origin.x, origin.y, lane, range.x, range.y);
        for (var i = 0u; i < RM; i++) {
            for (var j = 0u; j < CN; j++) {
                let e = i * MAX_CN + j;
                store(mode, g, s, entry(wid.xy, origin, lane, e), c[e]);
            }
        }
    }
}

@compute @workgroup_size(LANES)
fn gemm_forward(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lane: u32) {
    multiply_tile(FORWARD, wid, lane);
}

@compute @workgroup_size(LANES)
fn gemm_backward_input(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lane: u32) {
    multiply_tile(BACKWARD_INPUT, wid, lane);
}

@compute @workgroup_size(LANES)
fn gemm_backward_weight(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lane: u32) {
    multiply_tile(BACKWARD_WEIGHT, wid, lane);
}
