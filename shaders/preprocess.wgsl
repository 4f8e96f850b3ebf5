// preprocess.wgsl — torchvision's classic evaluation preprocessing, on the GPU, from a texture:
// Resize(shorter side → R) with PIL's antialiased bilinear filter, CenterCrop(S), ToTensor,
// Normalize(mean, std) — so an app's rendered frame reaches the network without a CPU copy.
//
// Input: a 2-D float texture of in_w × in_h (rgba8unorm or similar; sRGB formats are read
// as linear by textureLoad, so `srgb_encode` re-encodes them to the stored 8-bit values PIL
// would see). Output: image `batch_index` of x [N, 3, S, S] (f32, NCHW).
// Resize, per axis, as PIL's ImagingResample: scale = in/out, fs = max(scale, 1),
//   centre = (o + ½)·scale, taps k ∈ [max(⌊centre − fs + ½⌋, 0), min(⌊centre + fs + ½⌋, in)),
//   weight(k) = max(0, 1 − |(k − centre + ½)/fs|), normalised to sum 1.
// Horizontal pass first, rounded and clamped to 0..255 as PIL's 8-bit intermediate image is,
// then the vertical pass, rounded and clamped again. The crop starts at (left, top) of the
// resized image; then y = (v/255 − mean[c]) / std[c].
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

// PIL's filter window for output coordinate `o` of an axis resized from `n_in` to `n_out`:
// (first tap, tap count, centre, filter scale).
struct Window {
    first: i32,
    count: i32,
    centre: f32,
    fs: f32,
}

fn window(o: u32, n_in: u32, n_out: u32) -> Window {
    let scale = f32(n_in) / f32(n_out);
    let fs = max(scale, 1.0);
    let centre = (f32(o) + 0.5) * scale;
    let first = max(i32(centre - fs + 0.5), 0);
    let last = min(i32(centre + fs + 0.5), i32(n_in));
    return Window(first, last - first, centre, fs);
}

fn tap_weight(w: Window, k: i32) -> f32 {
    return max(0.0, 1.0 - abs((f32(w.first + k) - w.centre + 0.5) / w.fs));
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
    var wx_sum = 0.0;
    for (var i = 0; i < wx.count; i++) {
        wx_sum += tap_weight(wx, i);
    }
    var wy_sum = 0.0;
    for (var j = 0; j < wy.count; j++) {
        wy_sum += tap_weight(wy, j);
    }
    var acc = vec3f(0.0);
    for (var j = 0; j < wy.count; j++) {
        var row = vec3f(0.0);
        for (var i = 0; i < wx.count; i++) {
            row += tap_weight(wx, i) * texel(vec2i(wx.first + i, wy.first + j));
        }
        // PIL's intermediate image is 8-bit: round and clamp after the horizontal pass.
        row = clamp(round(row / wx_sum), vec3f(0.0), vec3f(255.0));
        acc += tap_weight(wy, j) * row;
    }
    let v = clamp(round(acc / wy_sum), vec3f(0.0), vec3f(255.0)) / 255.0;
    let mean = vec3f(p.mean_r, p.mean_g, p.mean_b);
    let inv_std = 1.0 / vec3f(p.std_r, p.std_g, p.std_b);
    let y = (v - mean) * inv_std;
    let plane = p.size * p.size;
    let base = p.batch_index * 3u * plane + idx;
    x[base] = y.r;
    x[base + plane] = y.g;
    x[base + 2u * plane] = y.b;
}
