// pool.wgsl — what the pooling shaders share (a snippet max_pool, avg_pool and
// adaptive_avg_pool each follow): their parameters, the tensors every forward and backward
// pass binds, the element an invocation owns, and the windows that cover an input element.
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

// Every forward pass reads x at binding 1 and writes y at 2 (max pooling adds its argmax at
// 3); every backward pass reads dy at binding 1 (the gradient it writes, and max pooling's
// argmax, are each shader's own).
@group(0) @binding(1) var<storage, read> fwd_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> fwd_y: array<f32>;
@group(0) @binding(1) var<storage, read> bwd_dy: array<f32>;

// How many elements y has (one forward invocation each) and x has (one backward invocation
// each).
fn output_count() -> u32 {
    return p.batch * p.channels * p.out_h * p.out_w;
}

fn input_count() -> u32 {
    return p.batch * p.channels * p.in_h * p.in_w;
}

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

// The output element `idx` of a fixed-window pass (max and average pooling): its window's
// top-left corner (i·S, j·S) in padded input coordinates, and where its input plane starts in x.
struct FixedWindow {
    top: u32,
    left: u32,
    plane_start: u32,
}

fn fixed_window(idx: u32) -> FixedWindow {
    let at = plane_element(idx, p.out_h, p.out_w);
    return FixedWindow(at.row * p.stride, at.col * p.stride, at.plane * p.in_h * p.in_w);
}

// The fixed windows [first, last] along one axis whose span [i·S, i·S + K) holds the padded
// position `at`, clipped to the `count` windows there are.
fn covering_windows(at: u32, count: u32) -> vec2u {
    let first = select(0u, (at + p.stride - p.kernel) / p.stride, at + 1u > p.kernel);
    return vec2u(first, min(at / p.stride, count - 1u));
}
