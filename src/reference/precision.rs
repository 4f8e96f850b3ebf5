//! f16 rounding for the mixed-precision path (`ops::Precision::Mixed`): the reference rounds
//! the operands it is given exactly as the GEMM's loads do (`shaders/gemm_operands.wgsl`'s
//! `round_f16`), then computes in f64 as for f32.

/// Smallest positive normal f16, 2⁻¹⁴.
const F16_MIN_NORMAL: f32 = 6.103_515_6e-5;
/// The first magnitude that rounds to infinity in f16: 65504 plus half an ulp (32 / 2).
const F16_OVERFLOW: f32 = 65520.0;

/// `v` rounded to the nearest f16 value (ties to even), as an f32; ±∞ from 65520 on; NaN and
/// infinities unchanged; f16's subnormals kept (multiples of 2⁻²⁴).
pub fn round_f16(v: f32) -> f32 {
    if !v.is_finite() {
        return v;
    }
    let magnitude = v.abs();
    if magnitude >= F16_OVERFLOW {
        return f32::INFINITY.copysign(v);
    }
    if magnitude < F16_MIN_NORMAL {
        let scale = 16_777_216.0; // 2²⁴
        return (v * scale).round_ties_even() / scale;
    }
    let bits = v.to_bits();
    let rounded = bits + 0xfff + ((bits >> 13) & 1);
    f32::from_bits(rounded & 0xffff_e000)
}

/// Every element of `v` through [`round_f16`].
pub fn round_f16_all(v: &[f32]) -> Vec<f32> {
    v.iter().map(|&x| round_f16(x)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The f32 value of an f16 bit pattern, decoded by the definition of binary16.
    fn f16_value(h: u16) -> f32 {
        let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
        let exponent = i32::from((h >> 10) & 0x1f);
        let fraction = f32::from(h & 0x3ff);
        match exponent {
            0 => sign * fraction * 2f32.powi(-24),
            31 if fraction == 0.0 => sign * f32::INFINITY,
            31 => f32::NAN,
            e => sign * (1.0 + fraction / 1024.0) * 2f32.powi(e - 15),
        }
    }

    #[test]
    fn every_f16_value_is_kept_and_every_midpoint_goes_to_the_even_neighbour() {
        let finite: Vec<u16> = (0..0x7c00u16).collect(); // +0 up to 65504
        for &h in &finite {
            let v = f16_value(h);
            assert_eq!(round_f16(v), v, "f16 {h:#06x} = {v:e} must be kept");
            assert_eq!(round_f16(-v), -v);
        }
        for pair in finite.windows(2) {
            let (lo, hi) = (f16_value(pair[0]), f16_value(pair[1]));
            // Exact in f32: adjacent f16 values differ in their 11th significant bit at most.
            let mid = (lo + hi) / 2.0;
            let even = if pair[0] % 2 == 0 { lo } else { hi };
            assert_eq!(round_f16(mid), even, "tie between {lo:e} and {hi:e}");
            assert_eq!(round_f16(f32::from_bits(mid.to_bits() - 1)), lo);
            assert_eq!(round_f16(f32::from_bits(mid.to_bits() + 1)), hi);
        }
    }

    #[test]
    fn overflow_goes_to_infinity_from_65520_and_non_finite_values_stay() {
        assert_eq!(round_f16(65519.996), 65504.0);
        assert_eq!(round_f16(65520.0), f32::INFINITY);
        assert_eq!(round_f16(-1e10), f32::NEG_INFINITY);
        assert_eq!(round_f16(f32::INFINITY), f32::INFINITY);
        assert!(round_f16(f32::NAN).is_nan());
        assert_eq!(round_f16(1e-9), 0.0);
    }
}
