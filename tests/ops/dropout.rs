use alexnet_wgpu::ops::dropout::{dropout_backward, dropout_forward, DropoutConfig, StepSeed};
use alexnet_wgpu::runtime::Uniform;

use crate::common::gradcheck::{self, GradCase};
use crate::common::reference::{self as cpu, to_f64};
use crate::common::{assert_close, gpu, Rng};

fn case(n: usize, p: f32, seed: u32, x: Vec<f32>) -> (GradCase, Uniform<StepSeed>) {
    let gpu = gpu();
    let seed = Uniform::new(gpu, "seed", &StepSeed { seed });
    let cfg = DropoutConfig { p, salt: 0 };
    let c = gradcheck::build(gpu, vec![("x", vec![n], x)], &[n], |t, y, dy, g| {
        let f = dropout_forward(gpu, &cfg, &seed, &t[0], y).unwrap();
        let b = dropout_backward(gpu, &cfg, &seed, dy, &g[0]).unwrap();
        (gradcheck::program([f]), gradcheck::program([b]))
    });
    (c, seed)
}

#[test]
fn dropout_forward_and_backward_match_cpu_reference() {
    let mut rng = Rng::new(13);
    for (p, seed) in [(0.5, 7u32), (0.25, 12345), (0.0, 1), (0.9, 99)] {
        let n = 4099;
        let x = rng.normals(n, 1.0);
        let (c, _) = case(n, p, seed, x.clone());
        let dy = rng.normals(n, 1.0);
        let (y, g) = c.evaluate(gpu(), &[&x], &dy);
        // The mask is the same hash on both sides; only the f32 product x·scale differs.
        assert_close(
            &format!("dropout p={p} y"),
            &y,
            &cpu::dropout_forward(&to_f64(&x), seed, p),
            1e-6,
        );
        let dx = cpu::dropout_backward(&to_f64(&dy), seed, p);
        assert_close(&format!("dropout p={p} dx"), &g[0], &dx, 1e-6);
        let kept = y.iter().filter(|&&v| v != 0.0).count() as f64 / n as f64;
        // Binomial: 4 standard deviations of the kept fraction.
        let sd = (f64::from(p) * (1.0 - f64::from(p)) / n as f64).sqrt();
        assert!(
            (kept - (1.0 - f64::from(p))).abs() <= 4.0 * sd + 1e-9,
            "p={p}: kept {kept}"
        );
        // Inverted scaling as torch.nn.Dropout: kept values are x / (1 - p).
        for (yi, xi) in y.iter().zip(&x).filter(|(y, _)| **y != 0.0) {
            let want = xi / (1.0 - p);
            assert!(
                (yi - want).abs() <= 1e-6 * want.abs(),
                "p={p}: {yi} != {xi} / (1 - p)"
            );
        }
    }
}

#[test]
fn dropout_masks_change_with_the_seed_and_match_between_passes() {
    let n = 1000;
    let x = vec![1.0f32; n];
    let (c, seed) = case(n, 0.5, 1, x.clone());
    let (y1, g1) = c.evaluate(gpu(), &[&x], &x);
    seed.write(gpu(), &StepSeed { seed: 2 });
    let (y2, _) = c.evaluate(gpu(), &[&x], &x);
    let differ = y1.iter().zip(&y2).filter(|(a, b)| a != b).count();
    assert!(
        differ > n / 4,
        "masks for seeds 1 and 2 differ in only {differ} of {n}"
    );
    assert_eq!(
        y1, g1[0],
        "backward with dy = x must reproduce the forward's mask"
    );
}

#[test]
fn dropout_backward_matches_finite_differences() {
    let x = Rng::new(14).normals(300, 1.0);
    let (c, _) = case(300, 0.5, 3, x);
    gradcheck::check(gpu(), "dropout", &c, 60, 1e-2, 1e-3);
}
