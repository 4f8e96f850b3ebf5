//! libjpeg-turbo's inter-block smoothing for progressive images whose low-frequency AC
//! coefficients are not all known to full precision (`decompress_smooth_data` in
//! `jdcoefct.c`, on by default as `do_block_smoothing`). Each of the first nine AC
//! coefficients that is still zero and not fully refined is estimated from the DC values of
//! the block's 5×5 neighbourhood; with no AC data at all the DC is re-estimated too. Complete
//! files (all that Pillow and libjpeg write) never reach this; a scan script that stops early
//! does, and Pillow then shows the smoothed pixels.

/// Natural-order positions of zigzag coefficients 1..=9 (`Q01_POS` … `Q30_POS`).
const POS: [usize; 10] = [0, 1, 8, 16, 9, 2, 3, 10, 17, 24];

/// Whether libjpeg would smooth (`smoothing_ok`): every component has a latched table with
/// nonzero DC and first nine AC steps and some DC data, and some component has one of its
/// first nine AC coefficients not fully refined.
pub(super) fn useful(comps: &[(Option<&[u16; 64]>, &[i32; 64])]) -> bool {
    let mut useful = false;
    for (quant, bits) in comps {
        let Some(q) = quant else { return false };
        if POS.iter().any(|&p| q[p] == 0) || bits[0] < 0 {
            return false;
        }
        useful |= bits[1..10].iter().any(|&b| b != 0);
    }
    useful
}

/// The 25 DC values around block (`bx`, `by`), `dc[row][col]` for rows −2..=2 and columns
/// −2..=2, picked as libjpeg picks them (see [`Neighbours::rows`]).
pub(super) struct Neighbours {
    pub dc: [[i64; 5]; 5],
}

impl Neighbours {
    /// The five block rows libjpeg reads for block row `by` of a component with `v` rows per
    /// iMCU row, `height_in_blocks` real rows and `imcu_rows` iMCU rows in the image. In the
    /// last iMCU row libjpeg numbers rows by that row's (possibly partial) height, which
    /// changes which rows count as the image's edge there; reproduced as is.
    pub fn rows(by: usize, v: usize, height_in_blocks: usize, imcu_rows: usize) -> [usize; 5] {
        let imcu = by / v;
        let block_rows = if imcu + 1 < imcu_rows || height_in_blocks.is_multiple_of(v) {
            v
        } else {
            height_in_blocks % v
        } as i64;
        let image_block_rows = block_rows * imcu_rows as i64;
        let ibr = imcu as i64 * block_rows + (by % v) as i64;
        let prev = if ibr > 0 { by - 1 } else { by };
        let prev_prev = if ibr > 1 { by - 2 } else { prev };
        let next = if ibr < image_block_rows - 1 {
            by + 1
        } else {
            by
        };
        let next_next = if ibr < image_block_rows - 2 {
            by + 2
        } else {
            next
        };
        [prev_prev, prev, by, next, next_next]
    }
}

/// `round(num / (q << 8))` with libjpeg's truncating division and its clamp to what `al`
/// more bits could still add.
fn estimate(num: i64, q: i64, al: i32) -> i16 {
    let clamp = |p: i64| {
        if al > 0 && p >= 1 << al {
            (1 << al) - 1
        } else {
            p
        }
    };
    let p = if num >= 0 {
        clamp(((q << 7) + num) / (q << 8))
    } else {
        -clamp(((q << 7) - num) / (q << 8))
    };
    p as i16
}

/// Fills in the estimates for one block, in place in `block` (a copy of the stored one).
pub(super) fn smooth_block(
    block: &mut [i16; 64],
    n: &Neighbours,
    quant: &[u16; 64],
    bits: &[i32; 64],
) {
    // libjpeg's DC01..DC25, row by row.
    let d = |i: usize| n.dc[(i - 1) / 5][(i - 1) % 5];
    let q = |k: usize| i64::from(quant[POS[k]]);
    let q00 = i64::from(quant[0]);
    let change_dc = bits[1..10].iter().all(|&b| b == -1);
    let sums: [i64; 10] = if change_dc {
        [
            -2 * d(1) - 6 * d(2) - 8 * d(3) - 6 * d(4) - 2 * d(5) - 6 * d(6)
                + 6 * d(7)
                + 42 * d(8)
                + 6 * d(9)
                - 6 * d(10)
                - 8 * d(11)
                + 42 * d(12)
                + 152 * d(13)
                + 42 * d(14)
                - 8 * d(15)
                - 6 * d(16)
                + 6 * d(17)
                + 42 * d(18)
                + 6 * d(19)
                - 6 * d(20)
                - 2 * d(21)
                - 6 * d(22)
                - 8 * d(23)
                - 6 * d(24)
                - 2 * d(25),
            -d(1) - d(2) + d(4) + d(5) - 3 * d(6) + 13 * d(7) - 13 * d(9) + 3 * d(10) - 3 * d(11)
                + 38 * d(12)
                - 38 * d(14)
                + 3 * d(15)
                - 3 * d(16)
                + 13 * d(17)
                - 13 * d(19)
                + 3 * d(20)
                - d(21)
                - d(22)
                + d(24)
                + d(25),
            -d(1) - 3 * d(2) - 3 * d(3) - 3 * d(4) - d(5) - d(6)
                + 13 * d(7)
                + 38 * d(8)
                + 13 * d(9)
                - d(10)
                + d(16)
                - 13 * d(17)
                - 38 * d(18)
                - 13 * d(19)
                + d(20)
                + d(21)
                + 3 * d(22)
                + 3 * d(23)
                + 3 * d(24)
                + d(25),
            d(3) + 2 * d(7) + 7 * d(8) + 2 * d(9) - 5 * d(12) - 14 * d(13) - 5 * d(14)
                + 2 * d(17)
                + 7 * d(18)
                + 2 * d(19)
                + d(23),
            -d(1) + d(5) + 9 * d(7) - 9 * d(9) - 9 * d(17) + 9 * d(19) + d(21) - d(25),
            2 * d(7) - 5 * d(8) + 2 * d(9) + d(11) + 7 * d(12) - 14 * d(13)
                + 7 * d(14)
                + d(15)
                + 2 * d(17)
                - 5 * d(18)
                + 2 * d(19),
            d(7) - d(9) + 2 * d(12) - 2 * d(14) + d(17) - d(19),
            d(7) - 3 * d(8) + d(9) - d(17) + 3 * d(18) - d(19),
            d(7) - d(9) - 3 * d(12) + 3 * d(14) + d(17) - d(19),
            d(7) + 2 * d(8) + d(9) - d(17) - 2 * d(18) - d(19),
        ]
    } else {
        [
            0,
            -7 * d(11) + 50 * d(12) - 50 * d(14) + 7 * d(15),
            -7 * d(3) + 50 * d(8) - 50 * d(18) + 7 * d(23),
            -d(3) + 13 * d(8) - 24 * d(13) + 13 * d(18) - d(23),
            d(10) + d(16) - 10 * d(17) + 10 * d(19) - d(2) - d(20) + d(22) - d(24) + d(4) - d(6)
                + 10 * d(7)
                - 10 * d(9),
            -d(11) + 13 * d(12) - 24 * d(13) + 13 * d(14) - d(15),
            0,
            0,
            0,
            0,
        ]
    };
    let last = if change_dc { 9 } else { 5 };
    for k in 1..=last {
        if bits[k] != 0 && block[POS[k]] == 0 {
            block[POS[k]] = estimate(q00 * sums[k], q(k), bits[k]);
        }
    }
    if change_dc {
        block[0] = estimate(q00 * sums[0], q00, 0);
    }
}
