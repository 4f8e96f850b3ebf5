// gemm_coop_f16x8.wgsl — the cooperative-matrix GEMM (gemm_coop.wgsl) with f16 A and B and f32
// C in 8 × 8 blocks: Apple GPUs' simdgroup matrices under mixed precision (Metal lists
// f16 × f16 → f32 at 8 × 8 × 8, its only size; the 16 × 16 configuration is NVIDIA's and AMD's).
// Used with mixed precision only (ops::Precision::Mixed): the shared loads round every operand
// with round_f16 (ROUND_F16, which the host always sets with this configuration), so element()
// converts a value that is already an f16 number, exactly. The loader puts this file first:
// enable directives must precede every declaration.
enable f16;
enable wgpu_cooperative_matrix;

// What the workgroup tiles hold, and the matrix types the kernel multiplies them as.
alias Element = f16;
alias MatrixA = coop_mat8x8<f16, A>;
alias MatrixB = coop_mat8x8<f16, B>;
alias MatrixC = coop_mat8x8<f32, C>;
// The blocks' side, and the padding that keeps each tile row (and each block's first element)
// on a 16-byte boundary: 8 f16s.
const MATRIX: u32 = 8u;
const PAD: u32 = 8u;
// The most C blocks one subgroup keeps: a 64 × 64 tile is 64 blocks, 8 per subgroup of 32.
const MAX_PASSES: u32 = 8u;

fn element(v: f32) -> Element {
    return f16(v);
}
