// preprocess.wgsl — torchvision's classic evaluation preprocessing, on the GPU, from a texture:
// Resize(shorter side → R) with PIL's antialiased bilinear filter, CenterCrop(S), ToTensor,
// Normalize(mean, std) — so an app's rendered frame reaches the network without a CPU copy.
//
// Input: a 2-D float texture of in_w × in_h (rgba8unorm or similar; sRGB formats are read
// as linear by textureLoad, so `srgb_encode` re-encodes them to the stored 8-bit values PIL
// would see). Output: image `batch_index` of x [N, 3, S, S] (f32, NCHW).
// Resize, per axis, as PIL's ImagingResample: scale = in/out, fs = max(scale, 1),
//   centre = (o + ½)·scale, taps k ∈ [max(⌊centre − fs + ½⌋, 0), min(⌊centre + fs + ½⌋, in)),
//   weight(k) = max(0, 1 − |(k − centre + ½)/fs|), normalised to sum 1, then made fixed point
//   with 22 fraction bits (PIL's PRECISION_BITS), rounded. All of it is done here in exact
//   integers: (k + ½ − centre)/fs = ((2k+1)·out − (2o+1)·in) / D with D = 2·max(in, out), so
//   tap k's weight is max(0, D − |(2k+1)·out − (2o+1)·in|) / D. (f32 centres and weights
//   were off by ~1e-5 of a level, which flips PIL's rounding on some pixels.)
// Horizontal pass first, accumulated in i32 from ½ (1 << 21), shifted down and clamped to
// 0..255 as PIL's 8-bit intermediate image is, then the vertical pass the same way. The crop
// starts at (left, top) of the resized image; then y = (v/255 − mean[c]) / std[c].
//
// Bindings (group 0): 0 = params (uniform), preprocess_texture: 1 texture, 2 x
// One invocation per output pixel; flat index gid.x + gid.y · num_workgroups.x · WG.

override WG: u32 = 64u;

struct PreprocessParams {
    in_w: u32,
    in_h: u32,
    resized_w: u32,
    resized_h: u32,
    left: u32,
    top: u32,
    size: u32,
    batch_index: u32,
    srgb_encode: u32,
    mean_r: f32,
    mean_g: f32,
    mean_b: f32,
    std_r: f32,
    std_g: f32,
    std_b: f32,
}

@group(0) @binding(0) var<uniform> p: PreprocessParams;
@group(0) @binding(1) var frame: texture_2d<f32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;

// PIL's filter window for output coordinate `o` of an axis resized from `n_in` to `n_out`,
// in the exact integer form of the header: first tap, tap count, (2o+1)·n_in, n_out, D.
struct Window {
    first: i32,
    count: i32,
    a: i32,
    n_out: i32,
    d: i32,
}

fn window(o: u32, n_in: u32, n_out: u32) -> Window {
    let a = i32(2u * o + 1u) * i32(n_in);
    let out2 = 2 * i32(n_out);
    // 2·n_out·(centre ∓ fs + ½), truncated toward zero as C's (int) cast (WGSL's i32 `/` too).
    var lo = a - i32(n_out);
    var hi = a + 3 * i32(n_out);
    if n_in >= n_out {
        lo = a - 2 * i32(n_in) + i32(n_out);
        hi = a + 2 * i32(n_in) + i32(n_out);
    }
    let first = max(lo / out2, 0);
    let last = min(hi / out2, i32(n_in));
    return Window(first, last - first, a, i32(n_out), 2 * i32(max(n_in, n_out)));
}

// Tap `k`'s unnormalised weight D·(1 − |x|/fs), an exact integer.
fn tap_weight(w: Window, k: i32) -> u32 {
    let num = abs((2 * (w.first + k) + 1) * w.n_out - w.a);
    return u32(max(w.d - num, 0));
}

// round(wk · 2^22 / total) without 64-bit integers: long division two bits at a time.
fn fixed_point(wk: u32, total: u32) -> i32 {
    var q = wk / total;
    var r = wk % total;
    for (var i = 0; i < 11; i++) {
        r = r << 2u;
        q = (q << 2u) + r / total;
        r = r % total;
    }
    return i32(q + select(0u, 1u, 2u * r >= total));
}

fn to_srgb(c: vec3f) -> vec3f {
    let low = c * 12.92;
    let high = 1.055 * pow(c, vec3f(1.0 / 2.4)) - 0.055;
    return select(high, low, c <= vec3f(0.0031308));
}

// The texel as the 0..255 value stored in the texture. Rounding recovers the exact stored
// byte of an 8-bit format after textureLoad's sRGB decode and our re-encode.
fn texel(xy: vec2i) -> vec3f {
    let c = textureLoad(frame, xy, 0).rgb;
    return round(select(c, to_srgb(c), p.srgb_encode != 0u) * 255.0);
}

@compute @workgroup_size(WG)
fn preprocess_texture(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let idx = gid.x + gid.y * nwg.x * WG;
    if idx >= p.size * p.size {
        return;
    }
    let ox = idx % p.size + p.left;
    let oy = idx / p.size + p.top;
    let wx = window(ox, p.in_w, p.resized_w);
    let wy = window(oy, p.in_h, p.resized_h);
    var wx_sum = 0u;
    for (var i = 0; i < wx.count; i++) {
        wx_sum += tap_weight(wx, i);
    }
    var wy_sum = 0u;
    for (var j = 0; j < wy.count; j++) {
        wy_sum += tap_weight(wy, j);
    }
    let half = vec3i(1 << 21u);
    var acc = half;
    for (var j = 0; j < wy.count; j++) {
        var row = half;
        for (var i = 0; i < wx.count; i++) {
            let k = fixed_point(tap_weight(wx, i), wx_sum);
            row += k * vec3i(texel(vec2i(wx.first + i, wy.first + j)));
        }
        // PIL's intermediate image is 8-bit: shift down and clamp after the horizontal pass.
        row = clamp(row >> vec3u(22u), vec3i(0), vec3i(255));
        acc += fixed_point(tap_weight(wy, j), wy_sum) * row;
    }
    let v = vec3f(clamp(acc >> vec3u(22u), vec3i(0), vec3i(255))) / 255.0;
    let mean = vec3f(p.mean_r, p.mean_g, p.mean_b);
    let inv_std = 1.0 / vec3f(p.std_r, p.std_g, p.std_b);
    let y = (v - mean) * inv_std;
    let plane = p.size * p.size;
    let base = p.batch_index * 3u * plane + idx;
    x[base] = y.r;
    x[base + plane] = y.g;
    x[base + 2u * plane] = y.b;
}
