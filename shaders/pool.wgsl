// pool.wgsl — what the pooling shaders share (a snippet max_pool, avg_pool and
// adaptive_avg_pool each follow): their parameters, the element an invocation owns, and the
// windows that cover an input element.
//
// A fixed window (max and average pooling) starts at i·S in padded coordinates and spans K
// rows (and columns likewise). Adaptive pooling leaves kernel, stride and padding at 0 and
// derives its windows from the sizes.

struct PoolParams {
    batch: u32,
    channels: u32,
    in_h: u32,
    in_w: u32,
    out_h: u32,
    out_w: u32,
    kernel: u32,
    stride: u32,
    padding: u32,
}

@group(0) @binding(0) var<uniform> p: PoolParams;

// One element of an [N, C, rows, cols] tensor: its plane (n·C + c), row and column.
struct PlaneElement {
    plane: u32,
    row: u32,
    col: u32,
}

// The element `idx` of a tensor of the batch's planes, each `rows` × `cols`.
fn plane_element(idx: u32, rows: u32, cols: u32) -> PlaneElement {
    return PlaneElement(idx / (rows * cols), (idx / cols) % rows, idx % cols);
}

// The fixed windows [first, last] along one axis whose span [i·S, i·S + K) holds the padded
// position `at`, clipped to the `count` windows there are.
fn covering_windows(at: u32, count: u32) -> vec2u {
    let first = select(0u, (at + p.stride - p.kernel) / p.stride, at + 1u > p.kernel);
    return vec2u(first, min(at / p.stride, count - 1u));
}
