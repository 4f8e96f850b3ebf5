//! The libjpeg-turbo-exact JPEG decoder (`data::jpeg::decode`) on arbitrary bytes, called
//! directly so truncated files reach it past `decode_image`'s truncation guard: an image of
//! the size it claims, or an error.
#![no_main]

use alexnet_wgpu::data::jpeg::{decode, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_pixels: 1 << 18,
        max_bytes: 1 << 24,
    };
    if let Ok(img) = decode(data, limits) {
        let samples = img.width as usize * img.height as usize * usize::from(img.channels);
        assert_eq!(img.data.len(), samples);
    }
});
