// gemm.wgsl — the SIMT tiled implicit GEMM for convolution and linear layers: forward, input
// gradient and weight gradient (the reductions that finish them are gemm_reduce.wgsl's). The
// problem, its operands and where results go are gemm_operands.wgsl's (prepended).
//
// Tiles: each workgroup computes a BM × BN block of C with 256 invocations, each a TM × TN
// register block; A and B advance through K in BK-deep tiles held in workgroup memory, read
// back as vec4s.
// TM × TN per invocation, with (BM/TM)·(BN/TN) = THREADS.
// The largest TM and TN: the register block's arrays are sized for it.
const MAX_T: u32 = 8u;

// tile_a is stored transposed ([BK][BM], k-major) with one vec4 of padding per k row, so the
// k-fastest stores of neighbouring invocations fall in different banks.
// (Sizes spelled out, not named overrides: see k_info in gemm_operands.wgsl.)
var<workgroup> tile_a: array<vec4<f32>, BK * (BM / 4u + 1u)>; // [BK][a_row()]
var<workgroup> tile_b: array<vec4<f32>, BK * (BN / 4u)>; // [BK][b_row()]
// Per k of a tile: (A offset, B offset, B row shift, B column shift), see k_terms; two tiles
// worth (the one being fetched and the next).
var<workgroup> k_info: array<vec4<i32>, 2u * BK>;

// vec4s per k row of tile_a and of tile_b.
fn a_row() -> u32 {
    return BM / 4u + 1u;
}

fn b_row() -> u32 {
    return BN / 4u;
}

// This invocation's TM × TN block of C, summed over k in [k_begin, k_end): entry (r, col) is
// acc[r · TN/4 + col / 4][col % 4]; rows and columns come in runs of 4 spread BM/TM·4 and
// BN/TN·4 apart (see block_position), so the vec4 reads of neighbours are contiguous.
fn multiply(mode: u32, g: u32, tile: vec2u, k_begin: u32, k_end: u32, lid: u32) -> array<vec4<f32>, MAX_T * MAX_T / 4u> {
    let a_k = lid % BK;
    let l = loader(mode, g, tile, lid);
    let ty = lid / (BN / TN);
    let tx = lid % (BN / TN);
    // Products are summed per SUM_BLOCK terms in `part`, then folded into `acc`: the rounding
    // error grows with SUM_BLOCK + K/SUM_BLOCK instead of K (FC6 sums 9216 terms).
    var acc: array<vec4<f32>, MAX_T * MAX_T / 4u>;
    var part: array<vec4<f32>, MAX_T * MAX_T / 4u>;
    // Software pipeline: while one tile is multiplied out of workgroup memory, the next one's
    // elements are already being fetched into registers (va, vb); k_info is double-buffered
    // so the next tile's terms can be written before this one's are done with.
    stage_k_terms(mode, g, 0u, k_begin, k_end, lid);
    workgroupBarrier();
    var va: array<f32, MAX_LOADS>;
    var vb: array<f32, MAX_LOADS>;
    fetch(mode, 0u, k_begin, k_end, lid, l, &va, &vb);
    var buffer = 0u;
    var tiles = 0u;
    for (var k0 = k_begin; k0 < k_end; k0 += BK) {
        for (var i = 0u; i < LOADS_A; i++) {
            let m = lid / BK + (THREADS / BK) * i;
            tile_a[a_k * a_row() + m / 4u][m % 4u] = va[i];
        }
        for (var i = 0u; i < LOADS_B; i++) {
            let k = lid / BN + (THREADS / BN) * i;
            tile_b[k * b_row() + (lid % BN) / 4u][lid % 4u] = vb[i];
        }
        let next = k0 + BK;
        buffer = 1u - buffer;
        next_tile(mode, g, buffer, next, k_end, lid, l, &va, &vb);
        for (var kk = 0u; kk < BK; kk++) {
            var a: array<vec4<f32>, MAX_T / 4u>;
            var b: array<vec4<f32>, MAX_T / 4u>;
            for (var i = 0u; i < TM / 4u; i++) {
                a[i] = tile_a[kk * a_row() + i * (BM / TM) + ty];
            }
            for (var j = 0u; j < TN / 4u; j++) {
                b[j] = tile_b[kk * b_row() + j * (BN / TN) + tx];
            }
            for (var i = 0u; i < TM / 4u; i++) {
                for (var j = 0u; j < TN / 4u; j++) {
                    let row = 4u * i * (TN / 4u) + j;
                    part[row] = fma(vec4(a[i].x), b[j], part[row]);
                    part[row + TN / 4u] = fma(vec4(a[i].y), b[j], part[row + TN / 4u]);
                    part[row + TN / 2u] = fma(vec4(a[i].z), b[j], part[row + TN / 2u]);
                    part[row + 3u * TN / 4u] = fma(vec4(a[i].w), b[j], part[row + 3u * TN / 4u]);
                }
            }
        }
        workgroupBarrier();
        tiles += 1u;
        if tiles % (SUM_BLOCK / BK) == 0u {
            for (var i = 0u; i < TM * TN / 4u; i++) {
                acc[i] += part[i];
                part[i] = vec4(0.0);
            }
        }
    }
    for (var i = 0u; i < TM * TN / 4u; i++) {
        acc[i] += part[i];
    }
    return acc;
}

// Global (m, n) of entry i = r · TN + col of this invocation's block (its value is
// acc[i / 4][i % 4]).
fn block_position(tile: vec2u, lid: u32, i: u32) -> vec2u {
    let r = i / TN;
    let col = i % TN;
    let m = tile.y * BM + (r / 4u) * BM / TM * 4u + (lid / (BN / TN)) * 4u + r % 4u;
    let n = tile.x * BN + (col / 4u) * BN / TN * 4u + (lid % (BN / TN)) * 4u + col % 4u;
    return vec2u(m, n);
}

@compute @workgroup_size(THREADS)
fn gemm_forward(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
    let g = wid.z / p.k_split;
    let s = wid.z % p.k_split;
    let range = split_range(s, extent(FORWARD).z);
    let acc = multiply(FORWARD, g, wid.xy, range.x, range.y, lid);
    for (var i = 0u; i < TM * TN; i++) {
        store_forward(g, s, block_position(wid.xy, lid, i), acc[i / 4u][i % 4u]);
    }
}

@compute @workgroup_size(THREADS)
fn gemm_backward_input(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
    let acc = multiply(BACKWARD_INPUT, wid.z, wid.xy, 0u, extent(BACKWARD_INPUT).z, lid);
    for (var i = 0u; i < TM * TN; i++) {
        store_backward_input(wid.z, block_position(wid.xy, lid, i), acc[i / 4u][i % 4u]);
    }
}

@compute @workgroup_size(THREADS)
fn gemm_backward_weight(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
    let g = wid.z / p.k_split;
    let s = wid.z % p.k_split;
    let range = split_range(s, extent(BACKWARD_WEIGHT).z);
    let acc = multiply(BACKWARD_WEIGHT, g, wid.xy, range.x, range.y, lid);
    for (var i = 0u; i < TM * TN; i++) {
        store_backward_weight(g, s, block_position(wid.xy, lid, i), acc[i / 4u][i % 4u]);
    }
}
