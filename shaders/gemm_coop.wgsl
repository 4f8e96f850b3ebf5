// gemm_coop.wgsl — the cooperative-matrix implicit GEMM for convolution and linear layers: the
// same three entry points as gemm.wgsl (same bindings, parameters, grid and split-K, so the
// host picks either per dispatch), with the multiply-adds done by the adapter's matrix units
// (wgpu's experimental cooperative matrices). A snippet: the loader puts a configuration first
// (gemm_coop_f16.wgsl or gemm_coop_f32.wgsl: element type, matrix types, MATRIX, PAD,
// MAX_PASSES, element()), then common.wgsl and gemm_operands.wgsl, then this file.
//
// Tiles: each workgroup of THREADS invocations computes a BM × BN tile of C, advancing through
// k in BK-deep steps (BK a multiple of MATRIX). Every invocation fetches its share of A and B
// with the shared loads (`loader`, `fetch`: im2col addressing, f16 rounding under mixed
// precision) and writes it, as Element, to workgroup tiles tile_a [BM][BK + PAD] and tile_b
// [BK][BN + PAD], both row-major; the next step's elements are fetched while this one is
// multiplied. The tile is (BM/MATRIX)·(BN/MATRIX) blocks of MATRIX × MATRIX, shared among the
// workgroup's subgroups: with S subgroups, subgroup s keeps the accumulators of blocks
// s·P .. s·P + P − 1 (P = blocks / S, "passes") in registers and multiplies them with
// coopMultiplyAdd for every MATRIX-deep slice of the step. At the end the blocks go through
// workgroup memory (tile_c, f32 [BM][BN + 4]) and every invocation stores its share of C with
// the shared epilogue (store_forward, store_backward_input, store_backward_weight).
//
// Subgroups: matrix operations are executed by whole subgroups, and how many subgroups a
// workgroup has depends on the adapter (subgroups of 32 on NVIDIA and Apple, 32 or 64 on AMD).
// The kernel reads the count (num_subgroups) at run time and makes it workgroup-uniform with
// workgroupUniformLoad, so every loop and branch around a matrix operation is uniform (naga
// checks that) and the block assignment fits any count for which P = blocks / S is a whole
// number from 1 to MAX_PASSES. The host uses the kernel only where the adapter's subgroup
// sizes allow that (src/ops/gemm_coop.rs); were it to run with any other count, every output
// of the workgroup is NaN, never a silently wrong number.
//
// Sums: each block's k terms are summed in one matrix accumulator (no blocked summation as in
// gemm.wgsl: matrix accumulators have no portable addition — Metal's have none), so the f32
// sums are the same terms in another order and grouping than the SIMT kernel's.

// Padding of tile_c's rows, in f32s: 16 bytes.
const C_PAD: u32 = 4u;

// (Sizes spelled out, not named overrides: see k_info in gemm_operands.wgsl.)
var<workgroup> tile_a: array<Element, BM * (BK + PAD)>; // [BM][a_stride()]
var<workgroup> tile_b: array<Element, BK * (BN + PAD)>; // [BK][b_stride()]
var<workgroup> tile_c: array<f32, BM * (BN + C_PAD)>; // [BM][c_stride()]
// Per k of a tile: (A offset, B offset, B row shift, B column shift), see k_terms; two tiles
// worth (the one being fetched and the next).
var<workgroup> k_info: array<vec4<i32>, 2u * BK>;
// (subgroup count, k_begin, k_end, 0), written by invocation 0 and read back uniform: naga's
// uniformity analysis takes every function argument for non-uniform.
var<workgroup> uniforms: vec4u;

fn a_stride() -> u32 {
    return BK + PAD;
}

fn b_stride() -> u32 {
    return BN + PAD;
}

fn c_stride() -> u32 {
    return BN + C_PAD;
}

// Block b of the tile: its first row and column.
fn block_origin(b: u32) -> vec2u {
    let across = BN / MATRIX;
    return vec2u((b / across) * MATRIX, (b % across) * MATRIX);
}

// Where block b starts in tile_c.
fn c_at(b: u32) -> u32 {
    let origin = block_origin(b);
    return origin.x * c_stride() + origin.y;
}

// This workgroup's BM × BN tile of C, summed over k in [k_begin, k_end), left in tile_c; returns
// false where the subgroup count does not fit (tile_c then holds nothing).
fn multiply(mode: u32, g: u32, tile: vec2u, k_begin: u32, k_end: u32, lid: u32, sg: u32, subgroups: u32) -> bool {
    if lid == 0u {
        uniforms = vec4u(subgroups, k_begin, k_end, 0u);
    }
    let u = workgroupUniformLoad(&uniforms);
    let blocks = (BM / MATRIX) * (BN / MATRIX);
    let passes = blocks / max(u.x, 1u);
    // `&`, not `&&`: naga lowers a short-circuit through a local variable, which its analysis
    // takes for non-uniform.
    let fits = (passes >= 1u) & (passes <= MAX_PASSES) & (passes * u.x == blocks);
    let l = loader(mode, g, tile, lid);
    // The accumulators start as blocks of a zeroed tile_c: loaded, not default-constructed,
    // since what a default Metal simdgroup matrix holds is not specified.
    for (var e = lid; e < BM * c_stride(); e += THREADS) {
        tile_c[e] = 0.0;
    }
    stage_k_terms(mode, g, 0u, k_begin, k_end, lid);
    workgroupBarrier();
    var acc: array<MatrixC, MAX_PASSES>;
    if fits {
        for (var i = 0u; i < MAX_PASSES; i++) {
            if i == passes {
                break;
            }
            let at = c_at(sg * passes + i);
            let stride = c_stride();
            acc[i] = coopLoadT<MatrixC>(&tile_c[at], stride);
        }
    }
    var va: array<f32, MAX_LOADS>;
    var vb: array<f32, MAX_LOADS>;
    fetch(mode, 0u, k_begin, k_end, lid, l, &va, &vb);
    var buffer = 0u;
    for (var k0 = u.y; k0 < u.z; k0 += BK) {
        for (var i = 0u; i < LOADS_A; i++) {
            let m = lid / BK + (THREADS / BK) * i;
            tile_a[m * a_stride() + lid % BK] = element(va[i]);
        }
        for (var i = 0u; i < LOADS_B; i++) {
            let k = lid / BN + (THREADS / BN) * i;
            tile_b[k * b_stride() + lid % BN] = element(vb[i]);
        }
        let next = k0 + BK;
        buffer = 1u - buffer;
        next_tile(mode, g, buffer, next, k_end, lid, l, &va, &vb);
        if fits {
            // A constant trip count with an exit (rather than i < passes) lets the compiler
            // unroll the loop and keep acc in registers.
            for (var i = 0u; i < MAX_PASSES; i++) {
                if i == passes {
                    break;
                }
                let origin = block_origin(sg * passes + i);
                var c = acc[i];
                for (var kk = 0u; kk < BK; kk += MATRIX) {
                    // Indices and strides bound with let: naga's SPIR-V writer cannot take them
                    // inline.
                    let at_a = origin.x * a_stride() + kk;
                    let at_b = kk * b_stride() + origin.y;
                    let stride_a = a_stride();
                    let stride_b = b_stride();
                    let a = coopLoadT<MatrixA>(&tile_a[at_a], stride_a);
                    let b = coopLoadT<MatrixB>(&tile_b[at_b], stride_b);
                    c = coopMultiplyAdd(a, b, c);
                }
                acc[i] = c;
            }
        }
        workgroupBarrier();
    }
    if fits {
        for (var i = 0u; i < MAX_PASSES; i++) {
            if i == passes {
                break;
            }
            let at = c_at(sg * passes + i);
            let stride = c_stride();
            let c = acc[i];
            coopStoreT(c, &tile_c[at], stride);
        }
    }
    workgroupBarrier();
    return fits;
}

// Multiplies, then stores this invocation's share of the tile (entries lid, lid + THREADS, …
// in row-major order, so neighbours store neighbouring columns) with the mode's epilogue.
fn gemm(mode: u32, g: u32, s: u32, tile: vec2u, range: vec2u, lid: u32, sg: u32, subgroups: u32) {
    let fits = multiply(mode, g, tile, range.x, range.y, lid, sg, subgroups);
    for (var e = lid; e < BM * BN; e += THREADS) {
        let at_tile = vec2u(e / BN, e % BN);
        let c = select(bitcast<f32>(0x7fc00000u), tile_c[at_tile.x * c_stride() + at_tile.y], fits);
        let mn = vec2u(tile.y * BM, tile.x * BN) + at_tile;
        store(mode, g, s, mn, c);
    }
}

@compute @workgroup_size(THREADS)
fn gemm_forward(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32, @builtin(subgroup_id) sg: u32, @builtin(num_subgroups) subgroups: u32) {
    let g = wid.z / p.k_split;
    let s = wid.z % p.k_split;
    gemm(FORWARD, g, s, wid.xy, split_range(s, extent(FORWARD).z), lid, sg, subgroups);
}

@compute @workgroup_size(THREADS)
fn gemm_backward_input(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32, @builtin(subgroup_id) sg: u32, @builtin(num_subgroups) subgroups: u32) {
    let range = vec2u(0u, extent(BACKWARD_INPUT).z);
    gemm(BACKWARD_INPUT, wid.z, 0u, wid.xy, range, lid, sg, subgroups);
}

@compute @workgroup_size(THREADS)
fn gemm_backward_weight(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32, @builtin(subgroup_id) sg: u32, @builtin(num_subgroups) subgroups: u32) {
    let g = wid.z / p.k_split;
    let s = wid.z % p.k_split;
    gemm(BACKWARD_WEIGHT, g, s, wid.xy, split_range(s, extent(BACKWARD_WEIGHT).z), lid, sg, subgroups);
}
