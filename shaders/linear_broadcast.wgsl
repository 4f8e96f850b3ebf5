// linear_broadcast.wgsl — linear_forward for small batches on CPU drivers with subgroups of at
// least 8 lanes: linear.wgsl's bindings and sums, with each input element loaded once per
// subgroup. In linear_forward every lane of a row block reads the same x[n, i], which a CPU
// driver loads lane by lane; here lane t loads x[n, i0 + t] for 8 values of i at a time and
// subgroup_broadcast.wgsl's broadcast8 hands them to every lane, so each multiply-add loads
// about one weight and an eighth of an input. Prepended: common.wgsl, f16_rounding.wgsl,
// linear.wgsl, subgroup_broadcast.wgsl.

// Launched as a grid of row blocks (workgroup x + y · num_workgroups.x), one subgroup of
// BROADCAST_LANES lanes each, lane t on row 8 · block + t of this dispatch's slice; each
// image in turn. Sums as linear_forward does: i ascending, folded every BLOCK terms.
@compute @workgroup_size(BROADCAST_LANES)
fn linear_forward_broadcast(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(subgroup_invocation_id) lane: u32) {
    let row = (wid.x + wid.y * nwg.x) * BROADCAST_LANES + lane;
    // Lanes past the last row compute row rows − 1 again (the broadcasts need every lane) and
    // store nothing.
    let r = min(row, p.rows - 1u);
    let o = p.row_offset + r;
    for (var n = 0u; n < p.batch; n++) {
        var acc = 0.0;
        var block = 0.0;
        for (var i0 = 0u; i0 < p.in_features; i0 += BROADCAST_LANES) {
            let own = min(i0 + lane, p.in_features - 1u);
            let x = broadcast8(operand(fwd_x[n * p.in_features + own]));
            for (var t = 0u; t < BROADCAST_LANES; t++) {
                let i = i0 + t;
                if i < p.in_features {
                    block += x[t] * operand(fwd_w[r * p.in_features + i]);
                    if i % BLOCK == BLOCK - 1u {
                        acc += block;
                        block = 0.0;
                    }
                }
            }
        }
        if row < p.rows {
            fwd_y[n * p.out_features + o] = forward_output(fwd_b[o] + (acc + block));
        }
    }
}
