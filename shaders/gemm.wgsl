// gemm.wgsl — tiled implicit GEMM for convolution and linear layers: forward, input gradient
// and weight gradient (the reductions that finish them are gemm_reduce.wgsl's).
//
// Every case is C[m, n] = Σ_k A[m, k] · B[k, n] over one group g, with A and B read straight
// from the tensors (im2col addressing inside the tile loads: no unfolded copy is ever made).
// Convolution geometry: x [N, C, H, W], w [O, C/G, KH, KW], y [N, O, OH, OW], P = OH·OW,
// KK = KH·KW. A linear layer is the 1×1 case: H = W = KH = KW = 1, x [N, IN], w [OUT, IN].
// The weight may be bound as a slice of rows (FC6 is larger than one binding): rows_per_group
// rows per group in the binding, global row = row_offset + g·rows_per_group + local row.
//
//   forward          m = out channel, n = (image, output pixel), k = (c, kh, kw)
//                    A = w[g·R + m, k],  B = x at (c, i·S + kh − P, j·S + kw − P) or 0
//                    y[b, o, p] = C + bias[o]  (ReLU fused when relu = 1); when few tiles
//                    cover y, k is split as for the weight gradient: partial[s] = C in y's
//                    layout, and gemm_reduce_splits_bias adds the chunks and the bias.
//   backward_input   m = in channel c, n = (image, input pixel), k = (oc, kh, kw)
//                    A = w[g·R + oc, m, kh, kw],  B = dy[b, o, i, j] where i·S = h + P − kh
//                    (and likewise j), else 0;  dx = C  (or += C when accumulate = 1: the
//                    contributions of later weight slices)
//   backward_weight  m = out channel, n = (c, kh, kw), k = (image, output pixel), the long
//                    reduction — split into k_split chunks (workgroup z = g·k_split + s):
//                    with one chunk dw += C, else partial[s] = C and gemm_reduce_splits adds
//                    Σ_s partial[s] into dw in a fixed order (deterministic, no atomics).
//
// Tiles: each workgroup computes a BM × BN block of C with 256 invocations, each a TM × TN
// register block; A and B advance through K in BK-deep tiles held in workgroup memory, read
// back as vec4s. Index arithmetic is hoisted out of the loads (divisions cost tens of
// instructions on GPUs, more than the multiply-adds they feed): each invocation decomposes its
// fixed B column and A rows once, and BK invocations decompose the tile's k values into
// `k_info` once per tile. A is loaded k-fastest and B n-fastest, so neighbouring invocations
// read neighbouring addresses.
//
// Bindings (group 0): 0 = params (uniform), then
//   gemm_forward, gemm_backward_input, gemm_backward_weight: 1 a_src, 2 b_src, 3 bias, 4 out
//     (forward: w, x, b, y;  backward_input: w, dy, —, dx;  backward_weight: dy, x, —, dw
//      or partial; "—" is any buffer, unused)

// The tile shape, set by the host (src/runtime/device.rs `GemmTiles`, which checks it): BM × BN
// outputs per workgroup, TM × TN per invocation (4 or 8 each), BK deep (a divisor of 64),
// (BM/TM)·(BN/TN) = THREADS, and each invocation loading LOADS_A = BM·BK/THREADS elements of
// A and LOADS_B = BN·BK/THREADS of B per tile (at most MAX_LOADS each).
override BM: u32 = 64u;
override BN: u32 = 64u;
override BK: u32 = 16u;
override TM: u32 = 4u;
override TN: u32 = 4u;
// Invocations per tiled workgroup (GemmTiles::THREADS on the host).
const THREADS: u32 = 256u;
// Loads per invocation and tile, at most (GemmTiles::MAX_LOADS): sizes the register arrays.
const MAX_LOADS: u32 = 8u;
// The largest TM and TN: the register block's arrays are sized for it.
const MAX_T: u32 = 8u;
// k terms summed in `part` before it is folded into `acc` (blocked summation); every BK
// divides it, and the host's split-K chunks are multiples of it (TILE_K in src/ops/gemm.rs).
const SUM_BLOCK: u32 = 64u;
override LOADS_A: u32 = BM * BK / THREADS;
override LOADS_B: u32 = BN * BK / THREADS;

const FORWARD: u32 = 0u;
const BACKWARD_INPUT: u32 = 1u;
const BACKWARD_WEIGHT: u32 = 2u;

struct GemmParams {
    batch: u32,
    in_channels: u32,
    in_h: u32,
    in_w: u32,
    out_channels: u32,
    out_h: u32,
    out_w: u32,
    kernel_h: u32,
    kernel_w: u32,
    stride: u32,
    padding: u32,
    groups: u32,
    row_offset: u32,
    rows_per_group: u32,
    accumulate: u32,
    relu: u32,
    k_split: u32,
    k_chunk: u32,
}

@group(0) @binding(0) var<uniform> p: GemmParams;
@group(0) @binding(1) var<storage, read> a_src: array<f32>;
@group(0) @binding(2) var<storage, read> b_src: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

// tile_a is stored transposed ([BK][BM], k-major) with one vec4 of padding per k row, so the
// k-fastest stores of neighbouring invocations fall in different banks.
override A_ROW: u32 = BM / 4u + 1u; // vec4s per k row of tile_a
override B_ROW: u32 = BN / 4u; // vec4s per k row of tile_b
var<workgroup> tile_a: array<vec4<f32>, BK * A_ROW>; // [BK][A_ROW]
var<workgroup> tile_b: array<vec4<f32>, BK * B_ROW>; // [BK][B_ROW]
// Per k of a tile: (A offset, B offset, B row shift, B column shift), see k_terms; two tiles
// worth (the one being fetched and the next).
var<workgroup> k_info: array<vec4<i32>, 2u * BK>;

fn cin_per_group() -> u32 {
    return p.in_channels / p.groups;
}

fn taps() -> u32 {
    return p.kernel_h * p.kernel_w;
}

fn out_pixels() -> u32 {
    return p.out_h * p.out_w;
}

// A[m, k] = a_src[row_term(m) + k_terms(k).x].
fn row_term(mode: u32, g: u32, m: u32) -> i32 {
    let cg = cin_per_group();
    switch mode {
        case FORWARD: {
            return i32((g * p.rows_per_group + m) * cg * taps());
        }
        case BACKWARD_INPUT: {
            return i32((g * p.rows_per_group * cg + m) * taps());
        }
        default: {
            return i32((p.row_offset + g * p.rows_per_group + m) * out_pixels());
        }
    }
}

// What k contributes to A's and B's addresses: (A offset, B offset, B row, B column), where B's
// element is at B offset + column_terms(n).x with the row and column shifts combined below.
fn k_terms(mode: u32, g: u32, k: u32) -> vec4<i32> {
    let cg = cin_per_group();
    switch mode {
        case FORWARD: {
            let tap = k % taps();
            let plane = i32((k / taps()) * p.in_h * p.in_w);
            return vec4<i32>(i32(k), plane, i32(tap / p.kernel_w), i32(tap % p.kernel_w));
        }
        case BACKWARD_INPUT: {
            let oc = k / taps();
            let tap = k % taps();
            let o = p.row_offset + g * p.rows_per_group + oc;
            return vec4<i32>(i32(oc * cg * taps() + tap), i32(o * out_pixels()), i32(tap / p.kernel_w), i32(tap % p.kernel_w));
        }
        default: {
            let b = k / out_pixels();
            let pixel = k % out_pixels();
            let a = i32((b * p.out_channels) * out_pixels() + pixel);
            let top = i32((pixel / p.out_w) * p.stride) - i32(p.padding);
            let left = i32((pixel % p.out_w) * p.stride) - i32(p.padding);
            return vec4<i32>(a, i32(b * p.in_channels * p.in_h * p.in_w), top, left);
        }
    }
}

// What column n contributes to B's address: (offset, row, column, 0).
fn column_terms(mode: u32, g: u32, n: u32) -> vec4<i32> {
    let cg = cin_per_group();
    switch mode {
        case FORWARD: {
            let b = n / out_pixels();
            let pixel = n % out_pixels();
            let top = i32((pixel / p.out_w) * p.stride) - i32(p.padding);
            let left = i32((pixel % p.out_w) * p.stride) - i32(p.padding);
            return vec4<i32>(i32((b * p.in_channels + g * cg) * p.in_h * p.in_w), top, left, 0);
        }
        case BACKWARD_INPUT: {
            let plane = p.in_h * p.in_w;
            let b = n / plane;
            let q = n % plane;
            let at = i32(b * p.out_channels * out_pixels());
            return vec4<i32>(at, i32(q / p.in_w + p.padding), i32(q % p.in_w + p.padding), 0);
        }
        default: {
            let tap = n % taps();
            let plane = i32((g * cg + n / taps()) * p.in_h * p.in_w);
            return vec4<i32>(plane, i32(tap / p.kernel_w), i32(tap % p.kernel_w), 0);
        }
    }
}

// B[k, n] from the two halves of its address; 0 in the padding (and, for the input gradient,
// where no output pixel reads this input pixel through this tap).
fn element_b(mode: u32, kt: vec4<i32>, nt: vec4<i32>) -> f32 {
    if mode == BACKWARD_INPUT {
        // dy[b, o, i, j] with i·S = h + P − kh and j·S = w + P − kw.
        var t = nt.y - kt.z;
        var s = nt.z - kt.w;
        if t < 0 || s < 0 {
            return 0.0;
        }
        if p.stride != 1u {
            let stride = i32(p.stride);
            if t % stride != 0 || s % stride != 0 {
                return 0.0;
            }
            t /= stride;
            s /= stride;
        }
        if t >= i32(p.out_h) || s >= i32(p.out_w) {
            return 0.0;
        }
        return b_src[u32(nt.x + kt.y + t * i32(p.out_w) + s)];
    }
    // x[b, c, h, w] with (h, w) = row and column shifts of k and n combined.
    let h = nt.y + kt.z;
    let w = nt.z + kt.w;
    if h < 0 || w < 0 || h >= i32(p.in_h) || w >= i32(p.in_w) {
        return 0.0;
    }
    return b_src[u32(nt.x + kt.y + h * i32(p.in_w) + w)];
}

// C's extent for a mode: (rows m, columns n, reduction k).
fn extent(mode: u32) -> vec3u {
    let cg = cin_per_group();
    switch mode {
        case FORWARD: {
            return vec3u(p.rows_per_group, p.batch * out_pixels(), cg * taps());
        }
        case BACKWARD_INPUT: {
            return vec3u(cg, p.batch * p.in_h * p.in_w, p.rows_per_group * taps());
        }
        default: {
            return vec3u(p.rows_per_group, cg * taps(), p.batch * out_pixels());
        }
    }
}

// The TM × TN block of C this invocation owns, summed over k in [k_begin, k_end).
// This invocation's LOADS_A elements of A and LOADS_B of B for the tile starting at k0, whose
// k terms are in k_info[buffer · BK ..]; 0 outside the matrices.
fn fetch(mode: u32, buffer: u32, k0: u32, k_end: u32, lid: u32, a_rows: array<i32, MAX_LOADS>, b_ok: bool, b_terms: vec4<i32>, va: ptr<function, array<f32, MAX_LOADS>>, vb: ptr<function, array<f32, MAX_LOADS>>) {
    let a_k = lid % BK;
    let a_ok = k0 + a_k < k_end;
    let a_offset = k_info[buffer * BK + a_k].x;
    for (var i = 0u; i < LOADS_A; i++) {
        var v = 0.0;
        if a_ok && a_rows[i] >= 0 {
            v = a_src[u32(a_rows[i] + a_offset)];
        }
        (*va)[i] = v;
    }
    for (var i = 0u; i < LOADS_B; i++) {
        let k = lid / BN + (THREADS / BN) * i;
        var w = 0.0;
        if b_ok && k0 + k < k_end {
            w = element_b(mode, k_info[buffer * BK + k], b_terms);
        }
        (*vb)[i] = w;
    }
}

// This invocation's TM × TN block of C, summed over k in [k_begin, k_end): entry (r, col) is
// acc[r · TN/4 + col / 4][col % 4]; rows and columns come in runs of 4 spread BM/TM·4 and
// BN/TN·4 apart (see block_position), so the vec4 reads of neighbours are contiguous.
fn multiply(mode: u32, g: u32, tile: vec2u, k_begin: u32, k_end: u32, lid: u32) -> array<vec4<f32>, MAX_T * MAX_T / 4u> {
    let size = extent(mode);
    let m0 = tile.y * BM;
    let n0 = tile.x * BN;
    // Loads: A at k column lid % BK, rows lid / BK + (THREADS / BK)·i; B at n column lid % BN,
    // k rows lid / BN + (THREADS / BN)·i: the same rows and column of every tile,
    // decomposed once here.
    let a_k = lid % BK;
    var a_rows: array<i32, MAX_LOADS>;
    for (var i = 0u; i < LOADS_A; i++) {
        let m = m0 + lid / BK + (THREADS / BK) * i;
        a_rows[i] = select(-1, row_term(mode, g, m), m < size.x);
    }
    let b_n = n0 + lid % BN;
    let b_ok = b_n < size.y;
    let b_terms = column_terms(mode, g, min(b_n, size.y - 1u));
    let ty = lid / (BN / TN);
    let tx = lid % (BN / TN);
    // Products are summed per SUM_BLOCK terms in `part`, then folded into `acc`: the rounding
    // error grows with SUM_BLOCK + K/SUM_BLOCK instead of K (FC6 sums 9216 terms).
    var acc: array<vec4<f32>, MAX_T * MAX_T / 4u>;
    var part: array<vec4<f32>, MAX_T * MAX_T / 4u>;
    // Software pipeline: while one tile is multiplied out of workgroup memory, the next one's
    // elements are already being fetched into registers (va, vb); k_info is double-buffered
    // so the next tile's terms can be written before this one's are done with.
    if lid < BK {
        k_info[lid] = k_terms(mode, g, min(k_begin + lid, k_end - 1u));
    }
    workgroupBarrier();
    var va: array<f32, MAX_LOADS>;
    var vb: array<f32, MAX_LOADS>;
    fetch(mode, 0u, k_begin, k_end, lid, a_rows, b_ok, b_terms, &va, &vb);
    var buffer = 0u;
    var tiles = 0u;
    for (var k0 = k_begin; k0 < k_end; k0 += BK) {
        for (var i = 0u; i < LOADS_A; i++) {
            let m = lid / BK + (THREADS / BK) * i;
            tile_a[a_k * A_ROW + m / 4u][m % 4u] = va[i];
        }
        for (var i = 0u; i < LOADS_B; i++) {
            let k = lid / BN + (THREADS / BN) * i;
            tile_b[k * B_ROW + (lid % BN) / 4u][lid % 4u] = vb[i];
        }
        let next = k0 + BK;
        buffer = 1u - buffer;
        if lid < BK && next < k_end {
            k_info[buffer * BK + lid] = k_terms(mode, g, min(next + lid, k_end - 1u));
        }
        workgroupBarrier();
        if next < k_end {
            fetch(mode, buffer, next, k_end, lid, a_rows, b_ok, b_terms, &va, &vb);
        }
        for (var kk = 0u; kk < BK; kk++) {
            var a: array<vec4<f32>, MAX_T / 4u>;
            var b: array<vec4<f32>, MAX_T / 4u>;
            for (var i = 0u; i < TM / 4u; i++) {
                a[i] = tile_a[kk * A_ROW + i * (BM / TM) + ty];
            }
            for (var j = 0u; j < TN / 4u; j++) {
                b[j] = tile_b[kk * B_ROW + j * (BN / TN) + tx];
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

// The k range of split s (workgroup z = g·k_split + s): all of it unless the reduction is
// split into k_split chunks of k_chunk.
fn split_range(s: u32, k: u32) -> vec2u {
    if p.k_split == 1u {
        return vec2u(0u, k);
    }
    return vec2u(s * p.k_chunk, min((s + 1u) * p.k_chunk, k));
}

@compute @workgroup_size(THREADS)
fn gemm_forward(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
    let size = extent(FORWARD);
    let g = wid.z / p.k_split;
    let s = wid.z % p.k_split;
    let range = split_range(s, size.z);
    let acc = multiply(FORWARD, g, wid.xy, range.x, range.y, lid);
    let y_count = p.batch * p.out_channels * out_pixels();
    for (var i = 0u; i < TM * TN; i++) {
        let mn = block_position(wid.xy, lid, i);
        if mn.x < size.x && mn.y < size.y {
            let o = p.row_offset + g * p.rows_per_group + mn.x;
            let b = mn.y / out_pixels();
            let at = (b * p.out_channels + o) * out_pixels() + mn.y % out_pixels();
            if p.k_split == 1u {
                var v = acc[i / 4u][i % 4u] + bias[o];
                if p.relu != 0u {
                    v = max(v, 0.0);
                }
                out[at] = v;
            } else {
                out[s * y_count + at] = acc[i / 4u][i % 4u];
            }
        }
    }
}

@compute @workgroup_size(THREADS)
fn gemm_backward_input(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
    let size = extent(BACKWARD_INPUT);
    let acc = multiply(BACKWARD_INPUT, wid.z, wid.xy, 0u, size.z, lid);
    let plane = p.in_h * p.in_w;
    for (var i = 0u; i < TM * TN; i++) {
        let mn = block_position(wid.xy, lid, i);
        if mn.x < size.x && mn.y < size.y {
            let c = wid.z * cin_per_group() + mn.x;
            let at = ((mn.y / plane) * p.in_channels + c) * plane + mn.y % plane;
            out[at] = select(0.0, out[at], p.accumulate != 0u) + acc[i / 4u][i % 4u];
        }
    }
}

@compute @workgroup_size(THREADS)
fn gemm_backward_weight(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
    let size = extent(BACKWARD_WEIGHT);
    let g = wid.z / p.k_split;
    let s = wid.z % p.k_split;
    let range = split_range(s, size.z);
    let acc = multiply(BACKWARD_WEIGHT, g, wid.xy, range.x, range.y, lid);
    let weights = p.groups * p.rows_per_group * size.y;
    for (var i = 0u; i < TM * TN; i++) {
        let mn = block_position(wid.xy, lid, i);
        if mn.x < size.x && mn.y < size.y {
            let at = (g * p.rows_per_group + mn.x) * size.y + mn.y;
            if p.k_split == 1u {
                out[at] += acc[i / 4u][i % 4u];
            } else {
                out[s * weights + at] = acc[i / 4u][i % 4u];
            }
        }
    }
}
