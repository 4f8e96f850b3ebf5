// augment.wgsl — training augmentation on the GPU, from decoded u8 images to the normalised
// network input, equal to the CPU path (src/data/transforms/augment.rs, `Augment::apply`).
// The CPU decodes, and draws every random number from the sample's own stream in the CPU
// path's order (the crop window, flip, jitter factors, lighting shift), passed per image.
// Per image n and output pixel (y, x) of the S×S crop:
//
//   col = flip ? S − 1 − x : x;   (rx, ry) = (left + col, top + y)   in the resized image
//   u8 = Resize(in → resized)[ry, rx], or 0 outside the resized image (PIL's crop fill)
//   v_c = u8_c / 255                                                   (ToTensor)
//   brightness b:  v_c = clamp(b · v_c, 0, 1)                       skipped when b = 1
//   contrast k:    m = mean over the image of gray(v)  (after brightness)
//                  v_c = clamp(k · v_c + (1 − k) · m, 0, 1)         skipped when k = 1
//   saturation s:  g = gray(v) of this pixel
//                  v_c = clamp(s · v_c + (1 − s) · g, 0, 1)         skipped when s = 1
//   lighting:      v_c = v_c + shift_c     (shift = Σ_j eigvec[c][j] · α_j · eigval_j, 0 if off)
//   normalise:     y[n, c, y, x] = (v_c − mean_c) / std_c
//
// with gray(r, g, b) = 0.299 r + 0.587 g + 0.114 b. Resize is PIL's antialiased bilinear
// ImagingResample in exact integers (resize.wgsl), as preprocess.wgsl's header derives it
// (22-bit fixed-point taps, horizontal pass first, rounded and clamped to 8 bits after each
// pass), so the u8 crop is bit-identical to the CPU's. When the CPU resized and cropped an
// image itself (a large one), it sends the S×S crop with in = resized = S×S and the window
// at (0, 0): an identity resize. WGSL's `/` may be off by 2.5 ulp, so divisions take one fma residual
// correction (correctly rounded where the driver fuses the fma); the contrast mean is an f32
// tree sum where the CPU's is an f64 sum. Measured against the CPU path (tests/ops/augment.rs):
// within 1 ulp, at most 3e-7, on lavapipe. Images whose `valid` is 0 are written as zeros:
// the padding of a short batch.
//
// Layout: images [N, slot_words] u32 — image n's in_w·in_h·3 bytes in HWC order (R, G, B per
//   pixel), byte i in word i / 4 at bits 8·(i % 4) (little-endian), in a slot of slot_words,
//   a multiple of 64 words so that every image starts 256-byte aligned (chunks bind at any
//   image). params [N] ImageParams (all of the batch); x [count, 3, S, S] f32 (this chunk's).
// Bindings (group 0): 0 = params (uniform), augment_batch: 1 images (chunk), 2 per-image
//   parameters (all), 3 x (chunk). The chunk is images first .. first + count of the batch.
// One workgroup of TREE invocations (tree_sum.wgsl) per image (workgroup id = image within the
// chunk, flat over x and y): contrast needs the whole image's mean, a workgroup tree_sum.

struct AugmentParams {
    size: u32,
    first: u32,
    slot_words: u32,
    mean_r: f32,
    mean_g: f32,
    mean_b: f32,
    std_r: f32,
    std_g: f32,
    std_b: f32,
}

struct ImageParams {
    valid: u32,
    flip: u32,
    brightness: f32,
    contrast: f32,
    saturation: f32,
    shift_r: f32,
    shift_g: f32,
    shift_b: f32,
    in_w: u32,
    in_h: u32,
    resized_w: u32,
    resized_h: u32,
    left: i32,
    top: i32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> p: AugmentParams;
@group(0) @binding(1) var<storage, read> pixels: array<u32>;
@group(0) @binding(2) var<storage, read> images: array<ImageParams>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;

// 0: padding image, 1: no contrast, 2: contrast (needs the mean). Read through
// workgroupUniformLoad so the barriers below are provably in uniform control flow.
var<workgroup> wg_mode: u32;

// a / b correctly rounded: q's residual a − q·b is exact in an fma, and one correction step
// rounds to nearest as the CPU's IEEE division does.
fn div_rn(a: f32, b: f32) -> f32 {
    let q = a / b;
    return q + fma(-q, b, a) / b;
}

fn gray(v: vec3<f32>) -> f32 {
    return 0.299 * v.x + 0.587 * v.y + 0.114 * v.z;
}

// Source pixel (sx, sy) of chunk image n, as integers 0..255.
fn source(n: u32, im: ImageParams, sx: i32, sy: i32) -> vec3i {
    let byte0 = (u32(sy) * im.in_w + u32(sx)) * 3u;
    var v: vec3i;
    for (var c = 0u; c < 3u; c++) {
        let i = byte0 + c;
        v[c] = i32((pixels[n * p.slot_words + i / 4u] >> (8u * (i % 4u))) & 0xffu);
    }
    return v;
}

// Crop pixel (row, col) of chunk image n — the resized image's pixel, 0 outside it — in
// [0, 1], after brightness.
fn load_pixel(n: u32, im: ImageParams, row: u32, col: u32) -> vec3<f32> {
    let rx = im.left + i32(col);
    let ry = im.top + i32(row);
    var u = vec3i(0);
    if rx >= 0 && ry >= 0 && rx < i32(im.resized_w) && ry < i32(im.resized_h) {
        let wx = window(u32(rx), im.in_w, im.resized_w);
        let wy = window(u32(ry), im.in_h, im.resized_h);
        let sum_x = weight_sum(wx);
        let sum_y = weight_sum(wy);
        let half = vec3i(1 << (FRACTION_BITS - 1u));
        var acc = half;
        for (var j = 0; j < wy.count; j++) {
            var line = half;
            for (var i = 0; i < wx.count; i++) {
                line += fixed_point(tap_weight(wx, i), sum_x) * source(n, im, wx.first + i, wy.first + j);
            }
            // PIL's intermediate image is 8-bit: shift down and clamp after the horizontal pass.
            line = clamp(line >> vec3u(FRACTION_BITS), vec3i(0), vec3i(255));
            acc += fixed_point(tap_weight(wy, j), sum_y) * line;
        }
        u = clamp(acc >> vec3u(FRACTION_BITS), vec3i(0), vec3i(255));
    }
    var v: vec3<f32>;
    for (var c = 0u; c < 3u; c++) {
        v[c] = div_rn(f32(u[c]), 255.0);
    }
    if im.brightness != 1.0 {
        v = clamp(im.brightness * v, vec3<f32>(0.0), vec3<f32>(1.0));
    }
    return v;
}

@compute @workgroup_size(TREE)
fn augment_batch(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let n = wid.x + wid.y * nwg.x;
    let im = images[p.first + n];
    let s = p.size;
    let plane = s * s;
    let out0 = n * 3u * plane;
    if lid == 0u {
        wg_mode = select(0u, select(1u, 2u, im.contrast != 1.0), im.valid != 0u);
    }
    let mode = workgroupUniformLoad(&wg_mode);
    if mode == 0u {
        for (var i = lid; i < 3u * plane; i += TREE) {
            x[out0 + i] = 0.0;
        }
        return;
    }
    // Contrast's mean grayscale of the brightness-adjusted image.
    var m = 0.0;
    if mode == 2u {
        var sum = 0.0;
        for (var i = lid; i < plane; i += TREE) {
            sum += gray(load_pixel(n, im, i / s, i % s));
        }
        m = div_rn(tree_sum(lid, sum), f32(plane));
    }
    let mean = vec3<f32>(p.mean_r, p.mean_g, p.mean_b);
    let stdv = vec3<f32>(p.std_r, p.std_g, p.std_b);
    let shift = vec3<f32>(im.shift_r, im.shift_g, im.shift_b);
    for (var i = lid; i < plane; i += TREE) {
        let row = i / s;
        var col = i % s;
        if im.flip != 0u {
            col = s - 1u - col;
        }
        var v = load_pixel(n, im, row, col);
        if im.contrast != 1.0 {
            v = clamp(im.contrast * v + (1.0 - im.contrast) * m, vec3<f32>(0.0), vec3<f32>(1.0));
        }
        if im.saturation != 1.0 {
            let g = gray(v);
            v = clamp(im.saturation * v + (1.0 - im.saturation) * g, vec3<f32>(0.0), vec3<f32>(1.0));
        }
        v = v + shift;
        for (var c = 0u; c < 3u; c++) {
            x[out0 + c * plane + i] = div_rn(v[c] - mean[c], stdv[c]);
        }
    }
}
