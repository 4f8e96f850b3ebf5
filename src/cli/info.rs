//! `alexnet info`: the per-layer table of the seed, with totals.

use alexnet_wgpu::model::summary::{format_table, smallest_input, summarize};
use clap::Args;

use alexnet_wgpu::train::options::ArchChoice;

#[derive(Args, Debug)]
pub struct InfoArgs {
    #[arg(long, value_enum, default_value_t = ArchChoice::Original)]
    pub arch: ArchChoice,
    #[arg(long, default_value_t = 1000)]
    pub classes: usize,
    #[arg(long, default_value_t = 224)]
    pub image_size: usize,
    /// Channel and FC-width multiplier.
    #[arg(long, default_value_t = 1.0)]
    pub width: f64,
}

pub fn run(args: &InfoArgs) -> anyhow::Result<()> {
    let config = args.arch.config(args.classes).scaled(args.width);
    let smallest = smallest_input(&config)?;
    if args.image_size < smallest {
        anyhow::bail!(
            "--image-size {} is below {smallest}, the smallest input {:?} accepts",
            args.image_size,
            config.arch
        );
    }
    println!(
        "AlexNet ({:?}, {} classes, {}x{} input; smallest input {smallest}x{smallest})",
        config.arch, config.classes, args.image_size, args.image_size
    );
    print!("{}", format_table(&summarize(&config, args.image_size)?));
    Ok(())
}
