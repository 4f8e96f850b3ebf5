// common.wgsl — what every op shader shares, prepended to each by the loader
// (src/ops/shaders.rs; WGSL has no #include). No bindings and no workgroup variables, so a
// shader that uses none of it only gains unused declarations.
//
// One-invocation-per-element kernels run WG invocations per workgroup (the runtime sets WG,
// runtime::WORKGROUP_SIZE) on a 2-D grid of workgroups, rows of num_workgroups.x, when one
// dimension's limit is too small: element flat_index(gid, nwg) = gid.x + gid.y · nwg.x · WG.

override WG: u32 = 64u;

fn flat_index(gid: vec3u, nwg: vec3u) -> u32 {
    return gid.x + gid.y * nwg.x * WG;
}

// Whether v is neither NaN nor ±∞: its exponent bits are not all ones. Testing the bits, not
// `v != v`, keeps compilers that assume NaN never occurs from folding the test away.
fn is_finite(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u;
}

// ReLU as torch.relu: `x <= 0` is false for NaN, so NaN passes through (max(x, 0) may not).
// One definition for the activation kernel and every epilogue that fuses it.
fn relu(x: f32) -> f32 {
    return select(x, 0.0, x <= 0.0);
}
