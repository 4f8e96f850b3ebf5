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
//   were off by ~1e-5 of a level, which flips PIL's rounding on some pixels.) The window and
//   weight helpers are in resize.wgsl, shared with augment.wgsl.
// Horizontal pass first, accumulated in i32 from ½ (1 << 21), shifted down and clamped to
// 0..255 as PIL's 8-bit intermediate image is, then the vertical pass the same way. The crop
// starts at (left, top) of the resized image; then y = (v/255 − mean[c]) / std[c].
//
// Bindings (group 0): 0 = params (uniform), preprocess_texture: 1 texture, 2 x
// One invocation per output pixel; flat index from common.wgsl's flat_index.

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
    let idx = flat_index(gid, nwg);
    if idx >= p.size * p.size {
        return;
    }
    let ox = idx % p.size + p.left;
    let oy = idx / p.size + p.top;
    let wx = window(ox, p.in_w, p.resized_w);
    let wy = window(oy, p.in_h, p.resized_h);
    let wx_sum = weight_sum(wx);
    let wy_sum = weight_sum(wy);
    let half = vec3i(1 << (FRACTION_BITS - 1u));
    var acc = half;
    for (var j = 0; j < wy.count; j++) {
        var row = half;
        for (var i = 0; i < wx.count; i++) {
            let k = fixed_point(tap_weight(wx, i), wx_sum);
            row += k * vec3i(texel(vec2i(wx.first + i, wy.first + j)));
        }
        // PIL's intermediate image is 8-bit: shift down and clamp after the horizontal pass.
        row = clamp(row >> vec3u(FRACTION_BITS), vec3i(0), vec3i(255));
        acc += fixed_point(tap_weight(wy, j), wy_sum) * row;
    }
    let v = vec3f(clamp(acc >> vec3u(FRACTION_BITS), vec3i(0), vec3i(255))) / 255.0;
    let mean = vec3f(p.mean_r, p.mean_g, p.mean_b);
    let inv_std = 1.0 / vec3f(p.std_r, p.std_g, p.std_b);
    let y = (v - mean) * inv_std;
    let plane = p.size * p.size;
    let base = p.batch_index * 3u * plane + idx;
    x[base] = y.r;
    x[base + plane] = y.g;
    x[base + 2u * plane] = y.b;
}
