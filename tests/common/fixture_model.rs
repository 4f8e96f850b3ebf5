//! The model of the `alexnet_small` fixture (tools/gen_fixtures.py), loaded with the
//! fixture's parameters, input and labels, for tests comparing whole-model runs to PyTorch.

use alexnet_wgpu::model::{AlexNet, AlexNetConfig, Plan, PlanOptions};
use alexnet_wgpu::runtime::Gpu;

use super::Fixture;

pub fn small_config() -> AlexNetConfig {
    AlexNetConfig {
        channels: [12, 32, 48, 48, 32],
        fc_width: 128,
        classes: 10,
        // The fixture runs PyTorch with dropout off; p = 0 makes ours the identity too.
        dropout: 0.0,
        ..AlexNetConfig::original(10)
    }
}

/// The fixture's model (its parameters) and a training plan with its input and labels
/// written, the input gradient on.
pub fn load_fixture_model(gpu: &Gpu, f: &Fixture) -> (AlexNet, Plan) {
    let model = AlexNet::new(gpu, small_config()).unwrap();
    for p in &model.params {
        let key = format!("param.{}", p.name);
        model
            .set_parameter(gpu, &p.name, &f.shape(&key), &f.f32(&key))
            .unwrap();
    }
    let [n, _, h, w]: [usize; 4] = f.shape("input").try_into().unwrap();
    let options = PlanOptions {
        batch: n,
        image_h: h,
        image_w: w,
        training: true,
        input_grad: true,
    };
    let plan = Plan::new(gpu, &model, options).unwrap();
    plan.input.write_f32(gpu, &f.f32("input")).unwrap();
    let labels: Vec<u32> = f.i64("labels").iter().map(|&l| l as u32).collect();
    plan.labels.write_u32(gpu, &labels).unwrap();
    (model, plan)
}
