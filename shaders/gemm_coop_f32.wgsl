// gemm_coop_f32.wgsl — the cooperative-matrix GEMM (gemm_coop.wgsl) in f32 throughout, in 8 × 8
// blocks: Apple GPUs' simdgroup matrices (Metal lists 8 × 8 × 8 f32; naga's MSL writer names a
// 16 × 16 type Metal does not have, so 8 × 8 is Metal's only size). f32 operands, f32 sums:
// usable for ops::Precision::F32. The loader puts this file first: enable directives must
// precede every declaration.
enable wgpu_cooperative_matrix;

// What the workgroup tiles hold, and the matrix types the kernel multiplies them as.
alias Element = f32;
alias MatrixA = coop_mat8x8<f32, A>;
alias MatrixB = coop_mat8x8<f32, B>;
alias MatrixC = coop_mat8x8<f32, C>;
// The blocks' side, and the padding that keeps each tile row (and each block's first element)
// on a 16-byte boundary: 4 f32s.
const MATRIX: u32 = 8u;
const PAD: u32 = 4u;
// The most C blocks one subgroup keeps: a 64 × 64 tile is 64 blocks, 8 per subgroup of 32.
const MAX_PASSES: u32 = 8u;

fn element(v: f32) -> Element {
    return v;
}
