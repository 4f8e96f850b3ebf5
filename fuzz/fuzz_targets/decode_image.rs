//! Image decoding on arbitrary bytes (JPEG and PNG, by content), then the size check and the
//! evaluation transform for what decodes, as the loader does for every training image.
#![no_main]

use std::path::Path;

use alexnet_wgpu::data::dataset::decode_image;
use alexnet_wgpu::data::transforms::SampleRng;
use alexnet_wgpu::data::Augment;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(img) = decode_image(data, Path::new("fuzz.img")) else {
        return;
    };
    let augment = Augment {
        resize: 16,
        ..Augment::imagenet(16)
    };
    if augment.check_input(img.width(), img.height()).is_ok() {
        let out = augment.apply(&img, &mut SampleRng::new(0, 0, 0));
        assert_eq!(out.len(), augment.output_len());
    }
});
