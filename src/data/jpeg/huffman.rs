//! Huffman entropy decoding (`jdhuff.c` for sequential scans, `jdphuff.c` for progressive
//! ones): the bit reader with byte-stuffing and marker handling, the derived decoding
//! tables, and the per-block decoders.
//!
//! Corrupt data follows libjpeg's recovery, not a panic: reading past a marker (or the end
//! of the data) yields zero bits and marks the segment as out of data (the scan decoder then
//! skips its remaining MCUs), a code longer than 16 bits decodes as symbol 0, and a run
//! that overshoots the block lands on the last coefficient (libjpeg pads its zigzag table
//! with 16 extra entries of 63 for this).

use super::JpegError;

/// Zigzag position → natural (row-major) position, padded as libjpeg's
/// `jpeg_natural_order` is so corrupt run lengths cannot index past the block.
pub(super) const NATURAL_ORDER: [usize; 80] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
    63, 63, 63, 63, 63, 63,
];

const LOOKAHEAD: u32 = 9;

/// A decoding table derived from a DHT segment (`jpeg_make_d_derived_tbl`).
#[derive(Clone)]
pub(super) struct HuffTable {
    /// For each `LOOKAHEAD`-bit prefix: (code length, symbol); length 0 = longer code.
    lookup: Vec<(u8, u8)>,
    /// Largest code of each length (-1 when none), index 1..=16; `maxcode[17]` is a sentinel.
    maxcode: [i32; 18],
    /// Symbol index offset for each length: symbol = values[code + valoffset[len]].
    valoffset: [i32; 17],
    values: Vec<u8>,
}

impl HuffTable {
    /// Builds the table from the 16 code-length counts and the symbols, refusing tables
    /// libjpeg refuses (more than 256 symbols, an over-subscribed code, DC symbols > 15).
    pub(super) fn new(counts: &[u8; 16], values: &[u8], is_dc: bool) -> Result<Self, JpegError> {
        let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
        if total > 256 || total != values.len() {
            return Err(JpegError::corrupt("bad Huffman table (symbol count)"));
        }
        if is_dc && values.iter().any(|&v| v > 15) {
            return Err(JpegError::corrupt("bad Huffman table (DC symbol above 15)"));
        }
        let mut lookup = vec![(0u8, 0u8); 1 << LOOKAHEAD];
        let mut maxcode = [-1i32; 18];
        let mut valoffset = [0i32; 17];
        let mut code: i32 = 0;
        let mut p: i32 = 0;
        for len in 1..=16u32 {
            let n = i32::from(counts[len as usize - 1]);
            // libjpeg refuses an over-subscribed code, and one that fills its code space
            // completely (leaving an all-ones code).
            if n > 0 && code + n >= (1 << len) {
                return Err(JpegError::corrupt(
                    "bad Huffman table (over-subscribed code)",
                ));
            }
            if n > 0 {
                valoffset[len as usize] = p - code;
                for i in 0..n {
                    let c = code + i;
                    if len <= LOOKAHEAD {
                        let shift = LOOKAHEAD - len;
                        let base = (c as usize) << shift;
                        let sym = values[(p + i) as usize];
                        for e in &mut lookup[base..base + (1 << shift)] {
                            *e = (len as u8, sym);
                        }
                    }
                }
                code += n;
                p += n;
                maxcode[len as usize] = code - 1;
            }
            code <<= 1;
        }
        maxcode[17] = i32::MAX;
        Ok(HuffTable {
            lookup,
            maxcode,
            valoffset,
            values: values.to_vec(),
        })
    }
}

/// Reads entropy-coded bits; stops at the first marker and then supplies zeros.
pub(super) struct BitReader<'a> {
    data: &'a [u8],
    pub pos: usize,
    acc: u64,
    nbits: u32,
    /// Set once a marker (or the end of the data) is reached; `pos` is then at its FF.
    pub at_marker: bool,
    /// How many of the buffered bits came from the data (the rest are zero fill).
    real: u32,
    /// libjpeg's `insufficient_data`: a code needed more bits than the segment had. The
    /// scan decoder then leaves the remaining MCUs of the segment untouched, as libjpeg does.
    pub insufficient: bool,
}

impl<'a> BitReader<'a> {
    pub(super) fn new(data: &'a [u8], pos: usize) -> Self {
        BitReader {
            data,
            pos,
            acc: 0,
            nbits: 0,
            at_marker: false,
            real: 0,
            insufficient: false,
        }
    }

    fn next_byte(&mut self) -> u8 {
        if self.at_marker {
            return 0;
        }
        let Some(&b) = self.data.get(self.pos) else {
            self.at_marker = true;
            return 0;
        };
        if b != 0xFF {
            self.pos += 1;
            return b;
        }
        // FF: skip fill bytes; FF 00 is a stuffed FF data byte, anything else a marker.
        let mut q = self.pos + 1;
        while self.data.get(q) == Some(&0xFF) {
            q += 1;
        }
        if self.data.get(q) == Some(&0) {
            self.pos = q + 1;
            0xFF
        } else {
            self.pos = q - 1;
            self.at_marker = true;
            0
        }
    }

    #[inline(always)]
    fn fill(&mut self) {
        while self.nbits <= 56 {
            let b = self.next_byte();
            self.acc |= u64::from(b) << (56 - self.nbits);
            self.nbits += 8;
            if !self.at_marker {
                self.real += 8;
            }
        }
    }

    #[inline(always)]
    fn peek(&mut self, n: u32) -> u32 {
        if self.nbits < n {
            self.fill();
        }
        (self.acc >> (64 - n)) as u32
    }

    #[inline(always)]
    fn consume(&mut self, n: u32) {
        self.acc <<= n;
        self.nbits -= n;
        if n > self.real {
            self.insufficient = true;
        }
        self.real = self.real.saturating_sub(n);
    }

    /// `GET_BITS(n)` for 0 <= n <= 16.
    #[inline(always)]
    pub(super) fn bits(&mut self, n: u32) -> i32 {
        if n == 0 {
            return 0;
        }
        let v = self.peek(n);
        self.consume(n);
        v as i32
    }

    /// `HUFF_DECODE`: the next symbol, or 0 for a code no table entry matches.
    #[inline(always)]
    pub(super) fn decode(&mut self, t: &HuffTable) -> u8 {
        let (len, sym) = t.lookup[self.peek(LOOKAHEAD) as usize];
        if len > 0 {
            self.consume(u32::from(len));
            return sym;
        }
        let mut len = LOOKAHEAD + 1;
        let mut code = self.peek(len) as i32;
        while code > t.maxcode[len as usize] {
            len += 1;
            code = (code << 1) | (self.peek(len) & 1) as i32;
        }
        self.consume(len);
        if len > 16 {
            return 0; // libjpeg: JWRN_HUFF_BAD_CODE, treated as a zero symbol
        }
        let i = code + t.valoffset[len as usize];
        t.values.get(i as usize).copied().unwrap_or(0)
    }

    /// Reads `s` magnitude bits and sign-extends them (`HUFF_EXTEND`).
    #[inline(always)]
    pub(super) fn receive_extend(&mut self, s: u32) -> i32 {
        if s == 0 {
            return 0;
        }
        let x = self.bits(s);
        if x < (1 << (s - 1)) {
            x + ((-1i32) << s) + 1
        } else {
            x
        }
    }
}

/// One block of a sequential scan (`decode_mcu`): DC difference then run-length AC terms.
pub(super) fn decode_block(
    r: &mut BitReader,
    dc: &HuffTable,
    ac: &HuffTable,
    pred: &mut i32,
    block: &mut [i16],
) {
    let s = u32::from(r.decode(dc));
    *pred = pred.wrapping_add(r.receive_extend(s));
    block[0] = *pred as i16;
    let mut k = 1;
    while k < 64 {
        let rs = r.decode(ac);
        let (run, s) = (usize::from(rs >> 4), u32::from(rs & 15));
        if s != 0 {
            k += run;
            block[NATURAL_ORDER[k]] = r.receive_extend(s) as i16;
        } else if run != 15 {
            break;
        } else {
            k += 15;
        }
        k += 1;
    }
}

/// Progressive DC first pass (`decode_mcu_DC_first`).
pub(super) fn decode_dc_first(
    r: &mut BitReader,
    dc: &HuffTable,
    pred: &mut i32,
    block: &mut [i16],
    al: u32,
) {
    let s = u32::from(r.decode(dc));
    *pred = pred.wrapping_add(r.receive_extend(s));
    block[0] = (*pred << al) as i16;
}

/// Progressive DC refinement (`decode_mcu_DC_refine`): one more bit of the DC term.
pub(super) fn decode_dc_refine(r: &mut BitReader, block: &mut [i16], al: u32) {
    if r.bits(1) != 0 {
        block[0] |= (1i32 << al) as i16;
    }
}

/// Progressive AC first pass (`decode_mcu_AC_first`) over the band `ss..=se`.
pub(super) fn decode_ac_first(
    r: &mut BitReader,
    ac: &HuffTable,
    block: &mut [i16],
    (ss, se, al): (usize, usize, u32),
    eobrun: &mut u32,
) {
    if *eobrun > 0 {
        *eobrun -= 1;
        return;
    }
    let mut k = ss;
    while k <= se {
        let rs = r.decode(ac);
        let (run, s) = (u32::from(rs >> 4), u32::from(rs & 15));
        if s != 0 {
            k += run as usize;
            block[NATURAL_ORDER[k]] = (r.receive_extend(s) << al) as i16;
        } else if run == 15 {
            k += 15;
        } else {
            *eobrun = (1u32 << run) + r.bits(run) as u32 - 1;
            break;
        }
        k += 1;
    }
}

/// Progressive AC refinement (`decode_mcu_AC_refine`): correction bits for coefficients
/// already nonzero, and newly nonzero ones of magnitude `1 << al`.
pub(super) fn decode_ac_refine(
    r: &mut BitReader,
    ac: &HuffTable,
    block: &mut [i16],
    (ss, se, al): (usize, usize, u32),
    eobrun: &mut u32,
) {
    let p1 = 1i32 << al;
    let m1 = -1i32 << al;
    let refine = |r: &mut BitReader, c: &mut i16| {
        if r.bits(1) != 0 && (i32::from(*c) & p1) == 0 {
            *c = (i32::from(*c) + if *c >= 0 { p1 } else { m1 }) as i16;
        }
    };
    let mut k = ss;
    if *eobrun == 0 {
        while k <= se {
            let rs = r.decode(ac);
            let (mut run, s) = (i32::from(rs >> 4), rs & 15);
            let mut value = 0;
            if s != 0 {
                // A new coefficient's size is always 1 (libjpeg warns otherwise, goes on).
                value = if r.bits(1) != 0 { p1 } else { m1 };
            } else if run != 15 {
                *eobrun = (1u32 << run) + r.bits(run as u32) as u32;
                break;
            }
            // Skip already-nonzero coefficients (refining them) and `run` zero ones.
            while k <= se {
                let c = &mut block[NATURAL_ORDER[k]];
                if *c != 0 {
                    refine(r, c);
                } else {
                    run -= 1;
                    if run < 0 {
                        break;
                    }
                }
                k += 1;
            }
            if value != 0 {
                block[NATURAL_ORDER[k]] = value as i16;
            }
            k += 1;
        }
    }
    if *eobrun > 0 {
        while k <= se {
            let c = &mut block[NATURAL_ORDER[k]];
            if *c != 0 {
                refine(r, c);
            }
            k += 1;
        }
        *eobrun -= 1;
    }
}
