// gemm_operands.wgsl — what every implicit-GEMM kernel shares (the SIMT one, gemm.wgsl, its
// direct form, gemm_direct.wgsl, and the cooperative-matrix one, gemm_coop.wgsl): the problem,
// its bindings, where each operand element lives, the register loads of a tile, and where each
// result goes. A snippet: the loader prepends it (src/ops/shaders.rs), after
// f16_rounding.wgsl (mixed precision's operand()).
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
// Index arithmetic is hoisted out of the loads (divisions cost tens of instructions on GPUs,
// more than the multiply-adds they feed): each invocation decomposes its fixed B column and A
// rows once (`loader`), and BK invocations decompose the tile's k values into `k_info` once
// per tile. A is loaded k-fastest and B n-fastest, so neighbouring invocations read
// neighbouring addresses.
//
// Bindings (group 0): 0 = params (uniform), then
//   gemm_forward, gemm_backward_input, gemm_backward_weight: 1 a_src, 2 b_src, 3 bias, 4 out
//     (forward: w, x, b, y;  backward_input: w, dy, —, dx;  backward_weight: dy, x, —, dw
//      or partial; "—" is any buffer, unused)

// The tile shape, set by the host (src/ops/gemm.rs `GemmTiles`, which checks it): BM × BN
// outputs per workgroup, BK deep (a divisor of 64), TM × TN per invocation of the SIMT kernel
// (4 or 8 each), and each invocation loading
// LOADS_A = BM·BK/THREADS elements of A and LOADS_B = BN·BK/THREADS of B per tile (at most
// MAX_LOADS each).
override BM: u32 = 64u;
override BN: u32 = 64u;
override BK: u32 = 16u;
override TM: u32 = 4u;
override TN: u32 = 4u;
// Invocations per tiled workgroup (GemmTiles::THREADS on the host).
const THREADS: u32 = 256u;
// Loads per invocation and tile, at most (GemmTiles::MAX_LOADS): sizes the register arrays.
const MAX_LOADS: u32 = 8u;
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

// Each kernel declares `k_info`, the k terms of the tile being fetched and of the next,
// `var<workgroup> k_info: array<vec4<i32>, 2u * BK>;`. Named override constants are all
// declared here (and ROUND_F16 in f16_rounding.wgsl), before any override-sized array: naga 30's pipeline-constant pass panics
// when a named override is lowered after an array size's anonymous one, and declarations
// are lowered as they are first used.

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

// k's digits: (c, kh, kw) for the forward and (oc, kh, kw) for the input gradient, whose k
// runs over (channel, tap); (image, output row, output column) for the weight gradient.
fn k_digits(mode: u32, k: u32) -> vec3u {
    if mode == BACKWARD_WEIGHT {
        let pixel = k % out_pixels();
        return vec3u(k / out_pixels(), pixel / p.out_w, pixel % p.out_w);
    }
    let tap = k % taps();
    return vec3u(k / taps(), tap / p.kernel_w, tap % p.kernel_w);
}

// The digits of k + 1, by counting (no division: gemm_direct.wgsl steps k this way).
fn next_k_digits(mode: u32, d: vec3u) -> vec3u {
    var limits = vec2u(p.kernel_h, p.kernel_w);
    if mode == BACKWARD_WEIGHT {
        limits = vec2u(p.out_h, p.out_w);
    }
    var next = d + vec3u(0u, 0u, 1u);
    if next.z == limits.y {
        next = vec3u(next.x, next.y + 1u, 0u);
        if next.y == limits.x {
            next = vec3u(next.x + 1u, 0u, 0u);
        }
    }
    return next;
}

// What k (with digits d) contributes to A's and B's addresses: (A offset, B offset, B row,
// B column), where B's element is at B offset + column_terms(n).x with the row and column
// shifts combined below.
fn k_terms_of(mode: u32, g: u32, k: u32, d: vec3u) -> vec4<i32> {
    switch mode {
        case FORWARD: {
            return vec4<i32>(i32(k), i32(d.x * p.in_h * p.in_w), i32(d.y), i32(d.z));
        }
        case BACKWARD_INPUT: {
            let o = p.row_offset + g * p.rows_per_group + d.x;
            let a = d.x * cin_per_group() * taps() + d.y * p.kernel_w + d.z;
            return vec4<i32>(i32(a), i32(o * out_pixels()), i32(d.y), i32(d.z));
        }
        default: {
            let a = i32((d.x * p.out_channels) * out_pixels() + d.y * p.out_w + d.z);
            let top = i32(d.y * p.stride) - i32(p.padding);
            let left = i32(d.z * p.stride) - i32(p.padding);
            return vec4<i32>(a, i32(d.x * p.in_channels * p.in_h * p.in_w), top, left);
        }
    }
}

fn k_terms(mode: u32, g: u32, k: u32) -> vec4<i32> {
    return k_terms_of(mode, g, k, k_digits(mode, k));
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
// where no output pixel reads this input pixel through this tap). The load is made in every
// case (at offset 0 where the element is 0) and its value selected: a branch around it would
// make it a masked, one-lane-at-a-time load on CPU drivers.
fn element_b(mode: u32, kt: vec4<i32>, nt: vec4<i32>) -> f32 {
    if mode == BACKWARD_INPUT {
        // dy[b, o, i, j] with i·S = h + P − kh and j·S = w + P − kw (selected, as below).
        var t = nt.y - kt.z;
        var s = nt.z - kt.w;
        var inside = (t >= 0) & (s >= 0);
        if p.stride != 1u {
            let stride = i32(p.stride);
            inside = inside & (t % stride == 0) & (s % stride == 0);
            t /= stride;
            s /= stride;
        }
        inside = inside & (t < i32(p.out_h)) & (s < i32(p.out_w));
        let at = select(0, nt.x + kt.y + t * i32(p.out_w) + s, inside);
        return select(0.0, b_src[u32(at)], inside);
    }
    // x[b, c, h, w] with (h, w) = row and column shifts of k and n combined.
    let h = nt.y + kt.z;
    let w = nt.z + kt.w;
    let inside = (h >= 0) & (w >= 0) & (h < i32(p.in_h)) & (w < i32(p.in_w));
    let at = select(0, nt.x + kt.y + h * i32(p.in_w) + w, inside);
    return select(0.0, b_src[u32(at)], inside);
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

// Where this invocation's loads come from, decomposed once per workgroup: the A row term of
// each of its LOADS_A rows (−1 outside A), and its B column's terms.
struct Loader {
    a_rows: array<i32, MAX_LOADS>,
    b_ok: bool,
    b_terms: vec4<i32>,
}

fn loader(mode: u32, g: u32, tile: vec2u, lid: u32) -> Loader {
    let size = extent(mode);
    var l: Loader;
    for (var i = 0u; i < LOADS_A; i++) {
        let m = tile.y * BM + lid / BK + (THREADS / BK) * i;
        l.a_rows[i] = select(-1, row_term(mode, g, m), m < size.x);
    }
    let b_n = tile.x * BN + lid % BN;
    l.b_ok = b_n < size.y;
    l.b_terms = column_terms(mode, g, min(b_n, size.y - 1u));
    return l;
}

// The k terms of the tile starting at k0 into k_info[buffer · BK ..], by the first BK
// invocations (none past the end of the reduction).
fn stage_k_terms(mode: u32, g: u32, buffer: u32, k0: u32, k_end: u32, lid: u32) {
    if lid < BK && k0 < k_end {
        k_info[buffer * BK + lid] = k_terms(mode, g, min(k0 + lid, k_end - 1u));
    }
}

// This invocation's LOADS_A elements of A and LOADS_B of B for the tile starting at k0, whose
// k terms are in k_info[buffer · BK ..]; 0 outside the matrices.
fn fetch(mode: u32, buffer: u32, k0: u32, k_end: u32, lid: u32, l: Loader, va: ptr<function, array<f32, MAX_LOADS>>, vb: ptr<function, array<f32, MAX_LOADS>>) {
    let a_k = lid % BK;
    let a_ok = k0 + a_k < k_end;
    let a_offset = k_info[buffer * BK + a_k].x;
    for (var i = 0u; i < LOADS_A; i++) {
        var v = 0.0;
        if a_ok && l.a_rows[i] >= 0 {
            v = operand(a_src[u32(l.a_rows[i] + a_offset)]);
        }
        (*va)[i] = v;
    }
    for (var i = 0u; i < LOADS_B; i++) {
        let k = lid / BN + (THREADS / BN) * i;
        var w = 0.0;
        if l.b_ok && k0 + k < k_end {
            w = operand(element_b(mode, k_info[buffer * BK + k], l.b_terms));
        }
        (*vb)[i] = w;
    }
}

// The software pipeline's step, once this tile's elements are stored to workgroup memory: the
// k terms of the tile at `next` staged, a barrier (this tile and those terms visible to all),
// then the next tile's elements fetched into registers, arriving while this one is multiplied.
fn next_tile(mode: u32, g: u32, buffer: u32, next: u32, k_end: u32, lid: u32, l: Loader, va: ptr<function, array<f32, MAX_LOADS>>, vb: ptr<function, array<f32, MAX_LOADS>>) {
    stage_k_terms(mode, g, buffer, next, k_end, lid);
    workgroupBarrier();
    if next < k_end {
        fetch(mode, buffer, next, k_end, lid, l, va, vb);
    }
}

// The k range of split s (workgroup z = g·k_split + s): all of it unless the reduction is
// split into k_split chunks of k_chunk.
fn split_range(s: u32, k: u32) -> vec2u {
    if p.k_split == 1u {
        return vec2u(0u, k);
    }
    return vec2u(s * p.k_chunk, min((s + 1u) * p.k_chunk, k));
}

// Where entry (m, n) of C goes, per kernel: the forward's output (bias and ReLU added) or its
// split-K partial s; the input gradient (assigned, or accumulated over weight slices); the
// weight gradient (accumulated) or its partial s.
fn store_forward(g: u32, s: u32, mn: vec2u, c: f32) {
    let size = extent(FORWARD);
    if mn.x >= size.x || mn.y >= size.y {
        return;
    }
    let o = p.row_offset + g * p.rows_per_group + mn.x;
    let b = mn.y / out_pixels();
    let at = (b * p.out_channels + o) * out_pixels() + mn.y % out_pixels();
    if p.k_split == 1u {
        var v = c + bias[o];
        if p.relu != 0u {
            v = relu(v);
        }
        out[at] = v;
    } else {
        out[s * p.batch * p.out_channels * out_pixels() + at] = c;
    }
}

fn store_backward_input(g: u32, mn: vec2u, c: f32) {
    let size = extent(BACKWARD_INPUT);
    if mn.x >= size.x || mn.y >= size.y {
        return;
    }
    let plane = p.in_h * p.in_w;
    let channel = g * cin_per_group() + mn.x;
    let at = ((mn.y / plane) * p.in_channels + channel) * plane + mn.y % plane;
    out[at] = select(0.0, out[at], p.accumulate != 0u) + c;
}

fn store_backward_weight(g: u32, s: u32, mn: vec2u, c: f32) {
    let size = extent(BACKWARD_WEIGHT);
    if mn.x >= size.x || mn.y >= size.y {
        return;
    }
    let at = (g * p.rows_per_group + mn.x) * size.y + mn.y;
    if p.k_split == 1u {
        out[at] += c;
    } else {
        out[s * p.groups * p.rows_per_group * size.y + at] = c;
    }
}

// Entry (m, n) of C stored as `mode` stores it (the three functions above).
fn store(mode: u32, g: u32, s: u32, mn: vec2u, c: f32) {
    switch mode {
        case FORWARD: {
            store_forward(g, s, mn, c);
        }
        case BACKWARD_INPUT: {
            store_backward_input(g, mn, c);
        }
        default: {
            store_backward_weight(g, s, mn, c);
        }
    }
}
