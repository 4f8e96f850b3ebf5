//! A JPEG decoder whose pixels equal libjpeg-turbo's default decompression, which is what
//! Pillow (so torchvision's `Image.open(p).convert("RGB")`) gives.
//!
//! Why: torchvision's preprocessing starts from libjpeg-turbo's pixels, and other decoders'
//! IDCTs and chroma upsampling differ from it by a few levels on some pixels; reproducing
//! libjpeg's integer arithmetic keeps our tensors within a level of torchvision's.
//!
//! What libjpeg-turbo does by default, and so this module: `JDCT_ISLOW` integer IDCT
//! ([`idct`]), fancy (triangle-filter) chroma upsampling, never the merged upsampler
//! ([`upsample`]), fixed-point YCbCr→RGB ([`color`]), no DCT scaling.
//!
//! Supported: 8-bit baseline and extended sequential Huffman, progressive (spectral selection
//! and successive approximation), restart intervals, 1 component (grayscale) and 3 components
//! (YCbCr, or RGB where libjpeg would assume it), any integral sampling factors. Anything else
//! (arithmetic coding, 12-bit, lossless, hierarchical, CMYK/YCCK, missing Huffman tables)
//! is [`JpegError::Unsupported`], so a caller can fall back to another decoder.
//!
//! Also reproduced: libjpeg's block smoothing ([`smooth`]) of progressive images whose first
//! AC coefficients were never fully refined (no complete file has any).

mod color;
mod huffman;
mod idct;
mod output;
mod smooth;
mod upsample;

use huffman::{BitReader, HuffTable, NATURAL_ORDER};

/// Why a JPEG did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JpegError {
    /// Valid JPEG features this decoder does not implement; another decoder may handle them.
    #[error("unsupported JPEG: {0}")]
    Unsupported(String),
    /// Data no JPEG decoder can make sense of.
    #[error("{0}")]
    Corrupt(String),
    /// The image is larger than the [`Limits`] allow.
    #[error("{0}")]
    TooLarge(String),
}

impl JpegError {
    fn corrupt(msg: impl Into<String>) -> Self {
        JpegError::Corrupt(msg.into())
    }

    fn unsupported(msg: impl Into<String>) -> Self {
        JpegError::Unsupported(msg.into())
    }
}

/// Caps checked against the frame header before anything is allocated for the image.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most pixels (width × height).
    pub max_pixels: u64,
    /// Most bytes for coefficients, sample planes and output together.
    pub max_bytes: u64,
}

/// A decoded image: `channels` (1 = grayscale, 3 = RGB) interleaved 8-bit samples, row-major.
#[derive(Debug, Clone)]
pub struct JpegImage {
    pub width: u32,
    pub height: u32,
    pub channels: u8,
    pub data: Vec<u8>,
}

impl JpegImage {
    /// RGB8; grayscale is replicated into the three channels, as PIL's `convert("RGB")` does.
    pub fn into_rgb8(self) -> image::RgbImage {
        let data = if self.channels == 3 {
            self.data
        } else {
            self.data.iter().flat_map(|&v| [v, v, v]).collect()
        };
        image::RgbImage::from_raw(self.width, self.height, data)
            .expect("decoder output matches its dimensions")
    }
}

/// Decodes a JPEG file's bytes as libjpeg-turbo would with its default settings.
///
/// # Errors
/// [`JpegError::Unsupported`] for JPEG features outside this decoder (see the module docs),
/// [`JpegError::TooLarge`] beyond `limits`, [`JpegError::Corrupt`] otherwise. Damage libjpeg
/// only warns about decodes as libjpeg decodes it: entropy-coded data that ends early leaves
/// the rest of its segment untouched, and misnumbered or missing restart markers resync the
/// way `jpeg_resync_to_restart` does.
pub fn decode(bytes: &[u8], limits: Limits) -> Result<JpegImage, JpegError> {
    Decoder::default().run(bytes, limits, 1)
}

/// Decodes at 1/`denom` of the size (`denom` 1, 2, 4 or 8) as libjpeg-turbo does with
/// `scale_denom = denom` (Pillow's `Image.draft()`): reduced-size IDCTs
/// ([`idct::idct_scaled`]), chroma scaled by its IDCT where that saves upsampling, and fancy
/// upsampling only above 1/8. The image is `⌈width / denom⌉ × ⌈height / denom⌉`.
///
/// # Errors
/// As [`decode`]; also [`JpegError::Unsupported`] for another `denom`, or sampling factors
/// whose scaled ratios are not integral.
pub fn decode_scaled(bytes: &[u8], limits: Limits, denom: usize) -> Result<JpegImage, JpegError> {
    if ![1, 2, 4, 8].contains(&denom) {
        return Err(JpegError::unsupported(format!(
            "scale 1/{denom}; expected 1/1, 1/2, 1/4 or 1/8"
        )));
    }
    Decoder::default().run(bytes, limits, denom)
}

struct Component {
    id: u8,
    /// Sampling factors.
    h: usize,
    v: usize,
    tq: usize,
    /// The quantization table, latched when the component's first scan starts (as libjpeg).
    quant: Option<[u16; 64]>,
    /// Real samples (`downsampled_width`/`_height`) and stored blocks (whole MCUs).
    w: usize,
    hgt: usize,
    bw: usize,
    bh: usize,
    coefs: Vec<i16>,
    /// Per coefficient, the lowest bit decoded so far (-1: none); progressive only.
    coef_bits: [i32; 64],
}

struct Frame {
    progressive: bool,
    width: usize,
    height: usize,
    comps: Vec<Component>,
    max_h: usize,
    max_v: usize,
    mcux: usize,
    mcuy: usize,
}

#[derive(Default)]
struct Decoder {
    qt: [Option<[u16; 64]>; 4],
    dc: [Option<HuffTable>; 4],
    ac: [Option<HuffTable>; 4],
    restart_interval: usize,
    frame: Option<Frame>,
    jfif: bool,
    adobe_transform: Option<u8>,
    scans: usize,
}

/// One scan's header: (component index, DC table, AC table) and the band/bit positions.
struct Scan {
    comps: Vec<(usize, usize, usize)>,
    ss: usize,
    se: usize,
    ah: u32,
    al: u32,
}

/// Finds the next marker at or after `pos` as libjpeg's `next_marker` does (skipping
/// garbage, FF fill bytes and stuffed FF 00); returns its code and the position after it.
fn next_marker(bytes: &[u8], mut pos: usize) -> Option<(u8, usize)> {
    loop {
        while *bytes.get(pos)? != 0xFF {
            pos += 1;
        }
        while *bytes.get(pos)? == 0xFF {
            pos += 1;
        }
        let code = bytes[pos];
        pos += 1;
        if code != 0 {
            return Some((code, pos));
        }
    }
}

fn be16(b: &[u8], i: usize) -> Result<usize, JpegError> {
    match b.get(i..i + 2) {
        Some(s) => Ok(usize::from(u16::from_be_bytes([s[0], s[1]]))),
        None => Err(JpegError::corrupt("marker segment is truncated")),
    }
}

impl Decoder {
    fn run(mut self, bytes: &[u8], limits: Limits, denom: usize) -> Result<JpegImage, JpegError> {
        if bytes.get(..2) != Some(&[0xFF, 0xD8]) {
            return Err(JpegError::corrupt(
                "not a JPEG file (no start-of-image marker)",
            ));
        }
        let mut pos = 2;
        // At the end of the data libjpeg inserts a fake end-of-image (with a warning).
        while let Some((marker, after)) = next_marker(bytes, pos) {
            pos = after;
            match marker {
                0xD9 => break,
                0xD8 => return Err(JpegError::corrupt("second start-of-image marker")),
                0xD0..=0xD7 | 0x01 => continue,
                _ => {}
            }
            let len = be16(bytes, pos)?;
            let seg = bytes.get(pos + 2..pos + len.max(2)).ok_or_else(|| {
                JpegError::corrupt("marker segment runs past the end of the file")
            })?;
            if len < 2 {
                return Err(JpegError::corrupt("marker segment with a length below 2"));
            }
            pos += len;
            match marker {
                0xC0..=0xC2 => self.read_sof(seg, marker == 0xC2, limits)?,
                0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                    let what = match marker {
                        0xC3 | 0xC7 | 0xCB | 0xCF => "lossless",
                        0xC9..=0xCB | 0xCD..=0xCF => "arithmetic-coded",
                        _ => "hierarchical",
                    };
                    return Err(JpegError::unsupported(format!(
                        "{what} (SOF marker {marker:02X})"
                    )));
                }
                0xC4 => self.read_dht(seg)?,
                0xDB => self.read_dqt(seg)?,
                0xDD => self.restart_interval = be16(seg, 0)?,
                0xDC => {
                    return Err(JpegError::unsupported(
                        "DNL marker (height given after the scan)",
                    ))
                }
                0xDA => pos = self.read_scan(bytes, seg, pos)?,
                0xE0 => self.jfif |= seg.len() >= 14 && seg.starts_with(b"JFIF\0"),
                0xEE if seg.len() >= 12 && seg.starts_with(b"Adobe") => {
                    self.adobe_transform = Some(seg[11]);
                }
                0xC8 | 0xCC | 0xE1..=0xEF | 0xF0..=0xFD | 0xFE => {}
                _ => {
                    return Err(JpegError::corrupt(format!(
                        "unknown marker FF {marker:02X}"
                    )))
                }
            }
        }
        if self.scans == 0 {
            return Err(JpegError::corrupt(
                "no image data (no scan before the end of the file)",
            ));
        }
        self.output(denom)
    }

    fn read_sof(&mut self, seg: &[u8], progressive: bool, limits: Limits) -> Result<(), JpegError> {
        if self.frame.is_some() {
            return Err(JpegError::corrupt("more than one frame header"));
        }
        if seg.len() < 6 {
            return Err(JpegError::corrupt("frame header is truncated"));
        }
        if seg[0] != 8 {
            return Err(JpegError::unsupported(format!("{}-bit samples", seg[0])));
        }
        let (height, width, nf) = (be16(seg, 1)?, be16(seg, 3)?, usize::from(seg[5]));
        if height == 0 {
            return Err(JpegError::unsupported("height 0 (set by a DNL marker)"));
        }
        if width == 0 || nf == 0 || seg.len() != 6 + 3 * nf {
            return Err(JpegError::corrupt("bad frame header"));
        }
        if nf != 1 && nf != 3 {
            return Err(JpegError::unsupported(format!(
                "{nf} color components (CMYK/YCCK?)"
            )));
        }
        let pixels = width as u64 * height as u64;
        if pixels > limits.max_pixels {
            return Err(JpegError::TooLarge(format!(
                "image claims {width}x{height} pixels; at most {} allowed",
                limits.max_pixels
            )));
        }
        let mut comps = Vec::with_capacity(nf);
        for c in seg[6..].chunks_exact(3) {
            let (h, v, tq) = (
                usize::from(c[1] >> 4),
                usize::from(c[1] & 15),
                usize::from(c[2]),
            );
            if !(1..=4).contains(&h) || !(1..=4).contains(&v) || tq > 3 {
                return Err(JpegError::corrupt(
                    "bad sampling factor or table in frame header",
                ));
            }
            comps.push((c[0], h, v, tq));
        }
        let max_h = comps.iter().map(|c| c.1).max().unwrap_or(1);
        let max_v = comps.iter().map(|c| c.2).max().unwrap_or(1);
        if comps.iter().any(|c| max_h % c.1 != 0 || max_v % c.2 != 0) {
            return Err(JpegError::unsupported("fractional sampling factors"));
        }
        let mcux = width.div_ceil(8 * max_h);
        let mcuy = height.div_ceil(8 * max_v);
        // An upper bound of the peak: the coefficients (2 bytes per stored sample), then
        // the full-size planes and the interleaved output (3 + 3 bytes per pixel).
        let stored: u64 = comps
            .iter()
            .map(|c| (mcux * c.1 * mcuy * c.2 * 64) as u64)
            .sum();
        let bytes = stored * 2 + pixels * 6;
        if bytes > limits.max_bytes {
            return Err(JpegError::TooLarge(format!(
                "decoding {width}x{height} pixels needs {bytes} bytes; at most {} allowed",
                limits.max_bytes
            )));
        }
        self.frame = Some(Frame {
            progressive,
            width,
            height,
            max_h,
            max_v,
            mcux,
            mcuy,
            comps: comps
                .into_iter()
                .map(|(id, h, v, tq)| {
                    let (bw, bh) = (mcux * h, mcuy * v);
                    Component {
                        id,
                        h,
                        v,
                        tq,
                        quant: None,
                        w: (width * h).div_ceil(max_h),
                        hgt: (height * v).div_ceil(max_v),
                        bw,
                        bh,
                        coefs: vec![0; bw * bh * 64],
                        coef_bits: [-1; 64],
                    }
                })
                .collect(),
        });
        Ok(())
    }

    fn read_dht(&mut self, mut seg: &[u8]) -> Result<(), JpegError> {
        while !seg.is_empty() {
            if seg.len() < 17 {
                return Err(JpegError::corrupt("Huffman table segment is truncated"));
            }
            let (class, id) = (seg[0] >> 4, usize::from(seg[0] & 15));
            if class > 1 || id > 3 {
                return Err(JpegError::corrupt("bad Huffman table class or index"));
            }
            let counts: [u8; 16] = seg[1..17].try_into().expect("16 bytes");
            let n: usize = counts.iter().map(|&c| usize::from(c)).sum();
            let values = seg
                .get(17..17 + n)
                .ok_or_else(|| JpegError::corrupt("Huffman table segment is truncated"))?;
            let table = HuffTable::new(&counts, values, class == 0)?;
            if class == 0 {
                self.dc[id] = Some(table);
            } else {
                self.ac[id] = Some(table);
            }
            seg = &seg[17 + n..];
        }
        Ok(())
    }

    fn read_dqt(&mut self, mut seg: &[u8]) -> Result<(), JpegError> {
        while !seg.is_empty() {
            let (precision, id) = (seg[0] >> 4, usize::from(seg[0] & 15));
            let size = match precision {
                0 => 64,
                1 => 128,
                _ => return Err(JpegError::corrupt("bad quantization table precision")),
            };
            if id > 3 {
                return Err(JpegError::corrupt("bad quantization table index"));
            }
            let body = seg
                .get(1..1 + size)
                .ok_or_else(|| JpegError::corrupt("quantization table segment is truncated"))?;
            let mut table = [0u16; 64];
            for (i, &zz) in NATURAL_ORDER[..64].iter().enumerate() {
                table[zz] = if precision == 0 {
                    u16::from(body[i])
                } else {
                    u16::from_be_bytes([body[2 * i], body[2 * i + 1]])
                };
            }
            self.qt[id] = Some(table);
            seg = &seg[1 + size..];
        }
        Ok(())
    }

    /// Parses a scan header and decodes its entropy-coded data (which starts at `pos`);
    /// returns where the data stopped.
    fn read_scan(&mut self, bytes: &[u8], seg: &[u8], pos: usize) -> Result<usize, JpegError> {
        let frame = self
            .frame
            .as_mut()
            .ok_or_else(|| JpegError::corrupt("scan before the frame header"))?;
        let ns = usize::from(*seg.first().unwrap_or(&0));
        if !(1..=4).contains(&ns) || seg.len() != 4 + 2 * ns {
            return Err(JpegError::corrupt("bad scan header"));
        }
        let mut comps = Vec::with_capacity(ns);
        for c in seg[1..1 + 2 * ns].chunks_exact(2) {
            let ci = frame
                .comps
                .iter()
                .position(|k| k.id == c[0])
                .ok_or_else(|| JpegError::corrupt("scan names a component the frame lacks"))?;
            let (td, ta) = (usize::from(c[1] >> 4), usize::from(c[1] & 15));
            if td > 3 || ta > 3 {
                return Err(JpegError::corrupt("bad Huffman table index in scan header"));
            }
            comps.push((ci, td, ta));
        }
        let tail = &seg[1 + 2 * ns..];
        let scan = Scan {
            comps,
            ss: usize::from(tail[0]),
            se: usize::from(tail[1]),
            ah: u32::from(tail[2] >> 4),
            al: u32::from(tail[2] & 15),
        };
        if ns > 1
            && scan
                .comps
                .iter()
                .map(|&(ci, ..)| frame.comps[ci].h * frame.comps[ci].v)
                .sum::<usize>()
                > 10
        {
            return Err(JpegError::corrupt("more than 10 blocks per MCU"));
        }
        if frame.progressive {
            // jdphuff.c's start_pass checks.
            let bad = if scan.ss == 0 {
                scan.se != 0
            } else {
                scan.ss > scan.se || scan.se > 63 || ns != 1
            } || (scan.ah != 0 && scan.al + 1 != scan.ah)
                || scan.al > 13;
            if bad {
                return Err(JpegError::corrupt("bad progressive scan parameters"));
            }
        }
        for &(ci, td, ta) in &scan.comps {
            let comp = &mut frame.comps[ci];
            if comp.quant.is_none() {
                comp.quant = Some(self.qt[comp.tq].ok_or_else(|| {
                    JpegError::corrupt(format!("no quantization table {} defined", comp.tq))
                })?);
            }
            let needs_dc = !frame.progressive || (scan.ss == 0 && scan.ah == 0);
            let needs_ac = !frame.progressive || scan.ss > 0;
            if (needs_dc && self.dc[td].is_none()) || (needs_ac && self.ac[ta].is_none()) {
                return Err(JpegError::unsupported(
                    "scan without its Huffman tables (default tables)",
                ));
            }
            if frame.progressive {
                for k in scan.ss..=scan.se.min(63) {
                    comp.coef_bits[k] = scan.al as i32;
                }
            }
        }
        self.scans += 1;
        Ok(decode_scan(
            frame,
            &scan,
            &self.dc,
            &self.ac,
            self.restart_interval,
            bytes,
            pos,
        ))
    }
}

/// Decodes one scan's MCUs into the frame's coefficient arrays; returns the position where
/// the entropy-coded data stopped (at the next marker, or earlier if it was not all read).
fn decode_scan(
    frame: &mut Frame,
    scan: &Scan,
    dc: &[Option<HuffTable>; 4],
    ac: &[Option<HuffTable>; 4],
    restart_interval: usize,
    bytes: &[u8],
    pos: usize,
) -> usize {
    #[derive(Clone, Copy, PartialEq)]
    enum Mode {
        Sequential,
        DcFirst,
        DcRefine,
        AcFirst,
        AcRefine,
    }
    let mode = match (frame.progressive, scan.ss == 0, scan.ah == 0) {
        (false, ..) => Mode::Sequential,
        (true, true, true) => Mode::DcFirst,
        (true, true, false) => Mode::DcRefine,
        (true, false, true) => Mode::AcFirst,
        (true, false, false) => Mode::AcRefine,
    };
    let band = (scan.ss, scan.se, scan.al);
    let (mcus_x, mcus_y) = if scan.comps.len() == 1 {
        let c = &frame.comps[scan.comps[0].0];
        (c.w.div_ceil(8), c.hgt.div_ceil(8))
    } else {
        (frame.mcux, frame.mcuy)
    };
    let mut r = BitReader::new(bytes, pos);
    let mut preds = [0i32; 4];
    let mut eobrun = 0u32;
    let mut next_restart = 0u8;
    for m in 0..mcus_x * mcus_y {
        if restart_interval > 0 && m > 0 && m % restart_interval == 0 {
            r = restart(bytes, &r, &mut next_restart);
            preds = [0; 4];
            eobrun = 0;
        }
        if r.insufficient {
            continue; // libjpeg: the rest of the segment stays as it is (grey, if new)
        }
        let (mx, my) = (m % mcus_x, m / mcus_x);
        for (k, &(ci, td, ta)) in scan.comps.iter().enumerate() {
            let comp = &mut frame.comps[ci];
            let (bw, h, v) = (comp.bw, comp.h, comp.v);
            // A non-interleaved scan's MCU is one block; an interleaved one has h×v per component.
            let mut blocks = [(0usize, 0usize); 16];
            let n = if scan.comps.len() == 1 {
                blocks[0] = (mx, my);
                1
            } else {
                for yy in 0..v {
                    for xx in 0..h {
                        blocks[yy * h + xx] = (mx * h + xx, my * v + yy);
                    }
                }
                h * v
            };
            for &(bx, by) in &blocks[..n] {
                let b = (by * bw + bx) * 64;
                let block = &mut comp.coefs[b..b + 64];
                let pred = &mut preds[k];
                match mode {
                    Mode::Sequential => huffman::decode_block(
                        &mut r,
                        dc[td].as_ref().expect("checked"),
                        ac[ta].as_ref().expect("checked"),
                        pred,
                        block,
                    ),
                    Mode::DcFirst => huffman::decode_dc_first(
                        &mut r,
                        dc[td].as_ref().expect("checked"),
                        pred,
                        block,
                        scan.al,
                    ),
                    Mode::DcRefine => huffman::decode_dc_refine(&mut r, block, scan.al),
                    Mode::AcFirst => huffman::decode_ac_first(
                        &mut r,
                        ac[ta].as_ref().expect("checked"),
                        block,
                        band,
                        &mut eobrun,
                    ),
                    Mode::AcRefine => huffman::decode_ac_refine(
                        &mut r,
                        ac[ta].as_ref().expect("checked"),
                        block,
                        band,
                        &mut eobrun,
                    ),
                }
            }
        }
    }
    r.pos
}

/// At a restart boundary: drops the buffered bits and reads the restart marker as libjpeg's
/// `read_restart_marker` and `jpeg_resync_to_restart` do: the expected RSTn (or one too far
/// off to judge) is consumed; an earlier RSTn is skipped over to the next marker; any other
/// marker, or one of the next two RSTn, is left in place so the segment reads as empty.
fn restart<'a>(bytes: &'a [u8], r: &BitReader<'a>, expected: &mut u8) -> BitReader<'a> {
    let want = *expected;
    *expected = (want + 1) & 7;
    let mut found = next_marker(bytes, r.pos);
    loop {
        let Some((marker, after)) = found else {
            return stuck(bytes, bytes.len(), r.insufficient);
        };
        let n = marker.wrapping_sub(0xD0);
        let leave = if marker < 0xC0 {
            None // not a valid marker: skip to the next one
        } else if n > 7 || n == (want + 1) & 7 || n == (want + 2) & 7 {
            Some(true)
        } else if n == (want + 7) & 7 || n == (want + 6) & 7 {
            None // an earlier restart: skip to the next marker
        } else {
            Some(false) // the expected one, or too far off: consume it
        };
        match leave {
            Some(false) => return BitReader::new(bytes, after),
            // Left unread, libjpeg keeps its out-of-data flag as it was.
            Some(true) => return stuck(bytes, after - 2, r.insufficient),
            None => found = next_marker(bytes, after),
        }
    }
}

/// A reader parked at a marker at `pos`: it supplies only zero bits.
fn stuck(bytes: &[u8], pos: usize, insufficient: bool) -> BitReader<'_> {
    let mut r = BitReader::new(bytes, pos);
    r.at_marker = true;
    r.insufficient = insufficient;
    r
}
