// resize.wgsl — PIL's antialiased bilinear resize (ImagingResample) in exact integers, shared
// by the two image shaders (preprocess.wgsl, whose header derives it, and augment.wgsl) and
// prepended to them by the loader after common.wgsl. Per axis resized from n_in to n_out,
// output coordinate o: taps k ∈ [first, first + count) with the unnormalised weight
// max(0, D − |(2k+1)·n_out − (2o+1)·n_in|), D = 2·max(n_in, n_out), normalised to 22-bit fixed
// point (PIL's PRECISION_BITS). No bindings.

// PIL's filter window for output coordinate `o`: first tap, tap count, (2o+1)·n_in, n_out, D.
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

// The sum of the window's weights, which normalises them.
fn weight_sum(w: Window) -> u32 {
    var sum = 0u;
    for (var k = 0; k < w.count; k++) {
        sum += tap_weight(w, k);
    }
    return sum;
}

// Fraction bits of the fixed-point weights (PIL's PRECISION_BITS); pixels are accumulated
// from ½ = 1 << (FRACTION_BITS − 1) and shifted down by FRACTION_BITS.
const FRACTION_BITS: u32 = 22u;

// round(wk · 2^22 / total) without 64-bit integers: long division two bits at a time
// (11 steps of 2 bits = FRACTION_BITS).
fn fixed_point(wk: u32, total: u32) -> i32 {
    var q = wk / total;
    var r = wk % total;
    for (var i = 0u; i < FRACTION_BITS / 2u; i++) {
        r = r << 2u;
        q = (q << 2u) + r / total;
        r = r % total;
    }
    return i32(q + select(0u, 1u, 2u * r >= total));
}
