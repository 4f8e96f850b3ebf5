//! Deterministic randomness: one SplitMix64 stream per `(seed, epoch, position)`.

/// SplitMix64's finaliser: a bijective 64-bit hash with good avalanche.
fn mix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A small deterministic random number generator (SplitMix64).
///
/// Built from a `(seed, epoch, position)` triple by hashing, so the random numbers a sample
/// gets depend on nothing else: not on the worker that handles it, nor on whether the run was
/// resumed.
#[derive(Clone, Debug)]
pub struct SampleRng {
    state: u64,
}

impl SampleRng {
    /// The stream for sample `position` of `epoch` under `seed`.
    pub fn new(seed: u64, epoch: u64, position: u64) -> SampleRng {
        SampleRng {
            state: mix64(mix64(mix64(seed) ^ epoch) ^ position),
        }
    }

    /// Next raw 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
    }

    /// Uniform in `[0, 1)` with 53 bits.
    pub fn uniform_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.uniform()
    }

    /// Standard normal N(0, 1) (Box–Muller).
    pub fn normal(&mut self) -> f32 {
        let u1 = 1.0 - self.uniform_f64(); // (0, 1]: ln is finite
        let u2 = self.uniform_f64();
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }

    /// Uniform integer in `0..n` (0 when `n == 0`).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_a_pure_function_of_the_triple() {
        let a: Vec<u64> = (0..4)
            .map({
                let mut r = SampleRng::new(1, 2, 3);
                move |_| r.next_u64()
            })
            .collect();
        let mut r = SampleRng::new(1, 2, 3);
        assert_eq!(a, (0..4).map(|_| r.next_u64()).collect::<Vec<_>>());
        assert_ne!(
            SampleRng::new(1, 2, 4).next_u64(),
            SampleRng::new(1, 2, 3).next_u64()
        );
        assert_ne!(
            SampleRng::new(1, 3, 3).next_u64(),
            SampleRng::new(1, 2, 3).next_u64()
        );
        let mut r = SampleRng::new(7, 0, 0);
        let n = 20000;
        let (mut s, mut s2, mut u) = (0f64, 0f64, 0f64);
        for _ in 0..n {
            let x = r.normal() as f64;
            s += x;
            s2 += x * x;
            u += r.uniform() as f64;
            assert!(r.below(5) < 5);
        }
        assert!((s / n as f64).abs() < 0.03);
        assert!((s2 / n as f64 - 1.0).abs() < 0.05);
        assert!((u / n as f64 - 0.5).abs() < 0.01);
        assert_eq!(r.below(0), 0);
    }
}
