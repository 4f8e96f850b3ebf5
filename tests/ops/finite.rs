use alexnet_wgpu::ops::finite::{check_finite, FiniteStep, NEVER};
use alexnet_wgpu::runtime::{Tensor, Uniform};

use crate::common::{gpu, run, upload, Rng};

/// The CPU reference: the flag a tensor should leave, given the flag before and the step.
fn reference(x: &[f32], flag: u32, step: u32) -> u32 {
    if x.iter().all(|v| v.is_finite()) {
        flag
    } else {
        flag.min(step)
    }
}

#[test]
fn check_finite_flags_the_first_step_of_each_bad_tensor_only() {
    let gpu = gpu();
    let mut rng = Rng::new(7);
    // Lengths around workgroup boundaries; bad values at the first, a middle and the last
    // element, of every kind (NaN, +Inf, -Inf) and none; huge but finite values stay finite.
    let n = 1000;
    let mut cases: Vec<Vec<f32>> = Vec::new();
    for (pos, bad) in [
        (0, f32::NAN),
        (517, f32::INFINITY),
        (n - 1, f32::NEG_INFINITY),
        (300, -f32::NAN),
    ] {
        let mut x = rng.normals(n, 1.0);
        x[pos] = bad;
        cases.push(x);
    }
    let mut finite = rng.normals(257, 1.0);
    finite[3] = f32::MAX;
    finite[4] = f32::MIN_POSITIVE / 2.0; // subnormal
    cases.push(finite);
    cases.push(vec![1.0]);

    let flags = Tensor::from_u32(gpu, "flags", &[cases.len()], &vec![NEVER; cases.len()]).unwrap();
    let step = Uniform::new(gpu, "step", &FiniteStep { step: 0 });
    let tensors: Vec<Tensor> = cases
        .iter()
        .enumerate()
        .map(|(i, x)| upload(gpu, &format!("x{i}"), &[x.len()], x))
        .collect();
    let mut want = vec![NEVER; cases.len()];
    // Two steps: the flag keeps the first step a tensor went bad, whatever came later.
    for s in [5u32, 9] {
        step.write(gpu, &FiniteStep { step: s });
        let mut dispatches = Vec::new();
        for (slot, t) in tensors.iter().enumerate() {
            dispatches.extend(check_finite(gpu, &step, t, &flags, slot).unwrap());
        }
        run(gpu, dispatches);
        for (slot, x) in cases.iter().enumerate() {
            want[slot] = reference(x, want[slot], s);
        }
        assert_eq!(flags.read_u32(gpu).unwrap(), want, "after step {s}");
    }
    assert_eq!(want, [5, 5, 5, 5, NEVER, NEVER]);
}

#[test]
fn check_finite_refuses_a_slot_outside_the_flags() {
    let gpu = gpu();
    let flags = Tensor::zeros_u32(gpu, "flags", &[2]).unwrap();
    let x = Tensor::zeros(gpu, "x", &[4]).unwrap();
    let step = Uniform::new(gpu, "step", &FiniteStep::default());
    let e = check_finite(gpu, &step, &x, &flags, 2)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("flags") && e.contains("more than 2"), "{e}");
}
