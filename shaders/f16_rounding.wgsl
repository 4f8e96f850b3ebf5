// f16_rounding.wgsl — mixed precision's operand rounding (src/ops/policy.rs
// `Precision::Mixed`): every operand of a convolution or linear layer (activation, weight,
// output gradient) is rounded to f16 as it is loaded, and the products are summed in f32, the
// numbers of f16 matrix hardware. A snippet: the GEMMs and linear.wgsl's matrix-vector kernels
// load through operand(); the host sets ROUND_F16 (`Precision::round_f16_constant`).

// Whether operand() rounds (mixed precision) or passes values through (f32).
override ROUND_F16: bool = false;

// f32 rounded to the nearest f16 value, ties to even (as an f32), overflowing to ±∞ from
// 65520 on, as IEEE conversion does. Done on the bits, not through f16 or pack2x16float,
// whose rounding WGSL leaves to the implementation: the same numbers on every adapter, and
// as src/reference's round_f16.
fn round_f16(v: f32) -> f32 {
    let bits = bitcast<u32>(v);
    let sign = bits & 0x80000000u;
    let magnitude = bitcast<f32>(bits ^ sign);
    if !is_finite(v) {
        return v; // ±∞ and NaN as they are
    }
    if magnitude >= 65520.0 {
        return bitcast<f32>(sign | 0x7f800000u);
    }
    if magnitude < 6.103515625e-5 {
        // Below f16's smallest normal: a multiple of 2⁻²⁴, round() ties to even.
        return round(v * 16777216.0) / 16777216.0;
    }
    // Keep 10 of f32's 23 fraction bits: add half an f16 ulp, minus one unless the kept
    // lowest bit is odd (ties to even), then clear the 13 dropped bits.
    let rounded = bits + 0xfffu + ((bits >> 13u) & 1u);
    return bitcast<f32>(rounded & 0xffffe000u);
}

// An operand element as the kernels multiply it.
fn operand(v: f32) -> f32 {
    if ROUND_F16 {
        return round_f16(v);
    }
    return v;
}
