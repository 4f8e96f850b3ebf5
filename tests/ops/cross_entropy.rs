use alexnet_wgpu::ops::cross_entropy::{cross_entropy, totals};
use alexnet_wgpu::runtime::{Program, Tensor};

use crate::common::reference::{self as cpu, to_f64};
use crate::common::{assert_close, gpu, Fixture, Rng};

struct Case {
    logits: Tensor,
    labels: Tensor,
    dlogits: Tensor,
    totals: Tensor,
    program: Program,
}

fn case(n: usize, k: usize) -> Case {
    let gpu = gpu();
    let logits = Tensor::zeros(gpu, "logits", &[n, k]).unwrap();
    let labels = Tensor::zeros_u32(gpu, "labels", &[n]).unwrap();
    let stats = Tensor::zeros(gpu, "stats", &[n, 3]).unwrap();
    let dlogits = Tensor::zeros(gpu, "dlogits", &[n, k]).unwrap();
    let totals = Tensor::zeros(gpu, "totals", &[totals::LEN]).unwrap();
    let mut program = Program::new();
    program.extend(cross_entropy(gpu, &logits, &labels, &stats, &dlogits, &totals).unwrap());
    Case {
        logits,
        labels,
        dlogits,
        totals,
        program,
    }
}

impl Case {
    fn run(&self, logits: &[f32], labels: &[u32]) -> (f32, Vec<f32>) {
        let gpu = gpu();
        self.logits.write_f32(gpu, logits).unwrap();
        self.labels.write_u32(gpu, labels).unwrap();
        self.program.run(gpu).unwrap();
        let t = self.totals.read_f32(gpu).unwrap();
        (t[totals::LOSS], self.dlogits.read_f32(gpu).unwrap())
    }
}

fn labels_usize(labels: &[u32]) -> Vec<usize> {
    labels.iter().map(|&l| l as usize).collect()
}

#[test]
fn cross_entropy_matches_cpu_reference_and_accumulates_totals() {
    let mut rng = Rng::new(15);
    let (n, k) = (7, 13);
    let c = case(n, k);
    let (mut sum, mut top1, mut top5) = (0.0, 0.0, 0.0);
    for scale in [1.0, 30.0, 200.0] {
        let logits = rng.normals(n * k, scale);
        let labels: Vec<u32> = (0..n).map(|_| rng.below(k) as u32).collect();
        let (loss, dlogits) = c.run(&logits, &labels);
        let (loss_ref, d_ref) = cpu::cross_entropy(&to_f64(&logits), n, k, &labels_usize(&labels));
        // log-sum-exp of ≤ 13 terms; relative 1e-6 of the loss (which grows with the scale).
        assert_close(
            &format!("cross_entropy scale {scale} loss"),
            &[loss],
            &[loss_ref],
            1e-6,
        );
        assert_close(
            &format!("cross_entropy scale {scale} dlogits"),
            &dlogits,
            &d_ref,
            1e-6,
        );
        sum += loss_ref * n as f64;
        for (row, &label) in logits.chunks(k).zip(&labels) {
            let rank = row.iter().filter(|&&z| z > row[label as usize]).count();
            top1 += f64::from(u8::from(rank < 1));
            top5 += f64::from(u8::from(rank < 5));
        }
    }
    let t = c.totals.read_f32(gpu()).unwrap();
    assert_close("running loss sum", &[t[totals::LOSS_SUM]], &[sum], 1e-6);
    assert_eq!(
        (t[totals::TOP1], t[totals::TOP5]),
        (top1 as f32, top5 as f32)
    );
    assert_eq!(
        (t[totals::SAMPLES], t[totals::STEPS]),
        (3.0 * n as f32, 3.0)
    );
}

#[test]
fn cross_entropy_gradient_matches_finite_differences() {
    let mut rng = Rng::new(16);
    let (n, k) = (3, 5);
    let c = case(n, k);
    let mut logits = rng.normals(n * k, 1.0);
    let labels = [1u32, 4, 0];
    let (_, analytic) = c.run(&logits, &labels);
    let eps = 1e-2f32;
    let mut numeric = Vec::new();
    for i in 0..n * k {
        let orig = logits[i];
        logits[i] = orig + eps;
        let plus = f64::from(c.run(&logits, &labels).0);
        logits[i] = orig - eps;
        let minus = f64::from(c.run(&logits, &labels).0);
        logits[i] = orig;
        numeric.push((plus - minus) / (f64::from(orig + eps) - f64::from(orig - eps)));
    }
    // The loss is read back as one f32 (~1e-7 relative): the quotient carries ~1e-5 noise.
    assert_close(
        "cross_entropy d/dlogits vs finite differences",
        &analytic,
        &numeric,
        1e-3,
    );
}

#[test]
fn cross_entropy_matches_pytorch_with_huge_logits() {
    let f = Fixture::load("cross_entropy");
    let [n, k]: [usize; 2] = f.shape("logits").try_into().unwrap();
    let labels: Vec<u32> = f.i64("labels").iter().map(|&l| l as u32).collect();
    let (loss, dlogits) = case(n, k).run(&f.f32("logits"), &labels);
    assert!(loss.is_finite(), "logits near 1000 must not overflow");
    f.assert_matches("loss", &[loss], 10.0, 1e-7);
    f.assert_matches("dlogits", &dlogits, 10.0, 1e-6);
}

#[test]
fn padding_labels_are_ignored_like_pytorch_ignore_index() {
    use alexnet_wgpu::ops::cross_entropy::IGNORE_LABEL;
    let mut rng = Rng::new(18);
    let (n, k) = (4, 6);
    let logits = rng.normals(n * k, 2.0);
    let c = case(n, k);
    let (loss, dlogits) = c.run(&logits, &[2, IGNORE_LABEL, 5, IGNORE_LABEL]);
    let valid: Vec<f64> = [0, 2]
        .iter()
        .flat_map(|&i| to_f64(&logits[i * k..(i + 1) * k]))
        .collect();
    let (loss_ref, d_ref) = cpu::cross_entropy(&valid, 2, k, &[2, 5]);
    assert_close("loss over valid samples", &[loss], &[loss_ref], 1e-6);
    assert_close("dlogits of sample 0", &dlogits[..k], &d_ref[..k], 1e-6);
    assert!(
        dlogits[k..2 * k].iter().all(|&g| g == 0.0),
        "a padding sample got a gradient"
    );
    assert_eq!(c.totals.read_f32(gpu()).unwrap()[totals::SAMPLES], 2.0);
}

#[test]
fn cross_entropy_out_of_range_label_gives_nan_not_a_silent_loss() {
    let c = case(2, 3);
    let (loss, _) = c.run(&[0.0; 6], &[0, 3]);
    assert!(
        loss.is_nan(),
        "a label ≥ classes must poison the loss, got {loss}"
    );
}
