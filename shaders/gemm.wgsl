// gemm.wgsl — tiled implicit GEMM for convolution and linear layers: forward, input gradient
// and weight gradient, plus the reductions that finish the weight and bias gradients.
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
//                    y[b, o, p] = C + bias[o]  (ReLU fused when relu = 1)
//   backward_input   m = in channel c, n = (image, input pixel), k = (oc, kh, kw)
//                    A = w[g·R + oc, m, kh, kw],  B = dy[b, o, i, j] where i·S = h + P − kh
//                    (and likewise j), else 0;  dx = C  (or += C when accumulate = 1: the
//                    contributions of later weight slices)
//   backward_weight  m = out channel, n = (c, kh, kw), k = (image, output pixel), the long
//                    reduction — split into k_split chunks (workgroup z = g·k_split + s):
//                    with one chunk dw += C, else partial[s] = C and gemm_splitk_reduce adds
//                    Σ_s partial[s] into dw in a fixed order (deterministic, no atomics).
//   bias_reduce      db[o] += Σ_{b, p} dy[b, o, p], one workgroup per o, tree-reduced.
//
// Tiles: each workgroup computes a BM × BN block of C with 256 invocations, each a TM × TN
// register block; A and B advance through K in BK-deep tiles held in workgroup memory.
//
// Bindings (group 0): 0 = params (uniform), then
//   gemm_forward, gemm_backward_input, gemm_backward_weight: 1 a_src, 2 b_src, 3 bias, 4 out
//     (forward: w, x, b, y;  backward_input: w, dy, —, dx;  backward_weight: dy, x, —, dw
//      or partial; "—" is any buffer, unused)
//   gemm_splitk_reduce:  1 partial, 2 dw
//   gemm_bias_reduce:    1 dy, 4 db (2 and 3 unused)

// Workgroup size of the elementwise split-K reduction (the tiled entry points use 256).
override WG: u32 = 256u;

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;
const TM: u32 = 4u;
const TN: u32 = 4u;
const THREADS: u32 = 256u;

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

var<workgroup> tile_a: array<f32, 1024>; // [BK][BM]
var<workgroup> tile_b: array<f32, 1024>; // [BK][BN]

fn cin_per_group() -> u32 {
    return p.in_channels / p.groups;
}

fn taps() -> u32 {
    return p.kernel_h * p.kernel_w;
}

fn out_pixels() -> u32 {
    return p.out_h * p.out_w;
}

// x[b, channel, i·S + kh − P, j·S + kw − P] (0 in the padding), for output pixel `pixel`.
fn input_at(b: u32, channel: u32, pixel: u32, tap: u32) -> f32 {
    let h = i32((pixel / p.out_w) * p.stride + tap / p.kernel_w) - i32(p.padding);
    let w = i32((pixel % p.out_w) * p.stride + tap % p.kernel_w) - i32(p.padding);
    if h < 0 || w < 0 || h >= i32(p.in_h) || w >= i32(p.in_w) {
        return 0.0;
    }
    return b_src[((b * p.in_channels + channel) * p.in_h + u32(h)) * p.in_w + u32(w)];
}

fn element_a(mode: u32, g: u32, m: u32, k: u32) -> f32 {
    let cg = cin_per_group();
    switch mode {
        case FORWARD: {
            return a_src[(g * p.rows_per_group + m) * cg * taps() + k];
        }
        case BACKWARD_INPUT: {
            let oc = k / taps();
            return a_src[((g * p.rows_per_group + oc) * cg + m) * taps() + k % taps()];
        }
        default: {
            let o = p.row_offset + g * p.rows_per_group + m;
            return a_src[((k / out_pixels()) * p.out_channels + o) * out_pixels() + k % out_pixels()];
        }
    }
}

fn element_b(mode: u32, g: u32, k: u32, n: u32) -> f32 {
    let cg = cin_per_group();
    switch mode {
        case FORWARD: {
            return input_at(n / out_pixels(), g * cg + k / taps(), n % out_pixels(), k % taps());
        }
        case BACKWARD_INPUT: {
            // dy at the output pixel that reads input pixel n through tap (kh, kw), if any.
            let tap = k % taps();
            let o = p.row_offset + g * p.rows_per_group + k / taps();
            let plane = p.in_h * p.in_w;
            let b = n / plane;
            let t = i32((n % plane) / p.in_w + p.padding) - i32(tap / p.kernel_w);
            let s = i32((n % plane) % p.in_w + p.padding) - i32(tap % p.kernel_w);
            if t < 0 || s < 0 || u32(t) % p.stride != 0u || u32(s) % p.stride != 0u {
                return 0.0;
            }
            let i = u32(t) / p.stride;
            let j = u32(s) / p.stride;
            if i >= p.out_h || j >= p.out_w {
                return 0.0;
            }
            return b_src[((b * p.out_channels + o) * p.out_h + i) * p.out_w + j];
        }
        default: {
            return input_at(k / out_pixels(), g * cg + n / taps(), k % out_pixels(), n % taps());
        }
    }
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
fn multiply(mode: u32, g: u32, tile: vec2u, k_begin: u32, k_end: u32, lid: u32) -> array<f32, 16> {
    let size = extent(mode);
    let m0 = tile.y * BM;
    let n0 = tile.x * BN;
    let ty = lid / (BN / TN);
    let tx = lid % (BN / TN);
    // Products are summed per 4 tiles (64 terms) in `part`, then folded into `acc`: the
    // rounding error grows with 64 + K/64 instead of K (FC6 sums 9216 terms).
    var acc: array<f32, 16>;
    var part: array<f32, 16>;
    var tiles = 0u;
    for (var k0 = k_begin; k0 < k_end; k0 += BK) {
        for (var e = lid; e < BK * BM; e += THREADS) {
            let k = k0 + e / BM;
            let m = m0 + e % BM;
            var v = 0.0;
            if k < k_end && m < size.x {
                v = element_a(mode, g, m, k);
            }
            tile_a[e] = v;
        }
        for (var e = lid; e < BK * BN; e += THREADS) {
            let k = k0 + e / BN;
            let n = n0 + e % BN;
            var v = 0.0;
            if k < k_end && n < size.y {
                v = element_b(mode, g, k, n);
            }
            tile_b[e] = v;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            var a: array<f32, 4>;
            var b: array<f32, 4>;
            for (var i = 0u; i < TM; i++) {
                a[i] = tile_a[kk * BM + ty * TM + i];
            }
            for (var j = 0u; j < TN; j++) {
                b[j] = tile_b[kk * BN + tx * TN + j];
            }
            for (var i = 0u; i < TM; i++) {
                for (var j = 0u; j < TN; j++) {
                    part[i * TN + j] += a[i] * b[j];
                }
            }
        }
        workgroupBarrier();
        tiles += 1u;
        if tiles % 4u == 0u {
            for (var i = 0u; i < TM * TN; i++) {
                acc[i] += part[i];
                part[i] = 0.0;
            }
        }
    }
    for (var i = 0u; i < TM * TN; i++) {
        acc[i] += part[i];
    }
    return acc;
}

// Global (m, n) of entry `i` of this invocation's block.
fn block_position(tile: vec2u, lid: u32, i: u32) -> vec2u {
    return vec2u(tile.y * BM + (lid / (BN / TN)) * TM + i / TN, tile.x * BN + (lid % (BN / TN)) * TN + i % TN);
}

@compute @workgroup_size(256)
fn gemm_forward(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
    let size = extent(FORWARD);
    let acc = multiply(FORWARD, wid.z, wid.xy, 0u, size.z, lid);
    for (var i = 0u; i < TM * TN; i++) {
        let mn = block_position(wid.xy, lid, i);
        if mn.x < size.x && mn.y < size.y {
            let o = p.row_offset + wid.z * p.rows_per_group + mn.x;
            let b = mn.y / out_pixels();
            var v = acc[i] + bias[o];
            if p.relu != 0u {
                v = max(v, 0.0);
            }
            out[(b * p.out_channels + o) * out_pixels() + mn.y % out_pixels()] = v;
        }
    }
}

@compute @workgroup_size(256)
fn gemm_backward_input(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
    let size = extent(BACKWARD_INPUT);
    let acc = multiply(BACKWARD_INPUT, wid.z, wid.xy, 0u, size.z, lid);
    let plane = p.in_h * p.in_w;
    for (var i = 0u; i < TM * TN; i++) {
        let mn = block_position(wid.xy, lid, i);
        if mn.x < size.x && mn.y < size.y {
            let c = wid.z * cin_per_group() + mn.x;
            let at = ((mn.y / plane) * p.in_channels + c) * plane + mn.y % plane;
            out[at] = select(0.0, out[at], p.accumulate != 0u) + acc[i];
        }
    }
}

@compute @workgroup_size(256)
fn gemm_backward_weight(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
    let size = extent(BACKWARD_WEIGHT);
    let g = wid.z / p.k_split;
    let s = wid.z % p.k_split;
    let k_begin = s * p.k_chunk;
    let k_end = min(k_begin + p.k_chunk, size.z);
    let acc = multiply(BACKWARD_WEIGHT, g, wid.xy, k_begin, k_end, lid);
    let weights = p.groups * p.rows_per_group * size.y;
    for (var i = 0u; i < TM * TN; i++) {
        let mn = block_position(wid.xy, lid, i);
        if mn.x < size.x && mn.y < size.y {
            let at = (g * p.rows_per_group + mn.x) * size.y + mn.y;
            if p.k_split == 1u {
                out[at] += acc[i];
            } else {
                out[s * weights + at] = acc[i];
            }
        }
    }
}

struct ReduceParams {
    count: u32,
    splits: u32,
}

@group(0) @binding(0) var<uniform> r: ReduceParams;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> reduced: array<f32>;

@compute @workgroup_size(WG)
fn gemm_splitk_reduce(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let i = gid.x + gid.y * nwg.x * WG;
    if i >= r.count {
        return;
    }
    var sum = 0.0;
    for (var s = 0u; s < r.splits; s++) {
        sum += partial[s * r.count + i];
    }
    reduced[i] += sum;
}

var<workgroup> partial_sums: array<f32, 256>;

@compute @workgroup_size(256)
fn gemm_bias_reduce(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
    let o = wid.x;
    let plane = out_pixels();
    var sum = 0.0;
    for (var e = lid; e < p.batch * plane; e += THREADS) {
        sum += a_src[((e / plane) * p.out_channels + o) * plane + e % plane];
    }
    partial_sums[lid] = sum;
    workgroupBarrier();
    for (var width = THREADS / 2u; width > 0u; width /= 2u) {
        if lid < width {
            partial_sums[lid] += partial_sums[lid + width];
        }
        workgroupBarrier();
    }
    if lid == 0u {
        out[o] += partial_sums[0];
    }
}
