// gemm_coop_f16.wgsl — the cooperative-matrix GEMM (gemm_coop.wgsl) with f16 A and B and f32
// C in 16 × 16 blocks: tensor cores on NVIDIA and AMD Vulkan adapters (their
// VK_KHR_cooperative_matrix lists f16 × f16 → f32 at 16 × 16 × 16). Used with mixed precision
// only (ops::Precision::Mixed): the shared loads round every operand with round_f16 (ROUND_F16,
// which the host always sets with this configuration), so element() converts a value that is
// already an f16 number, exactly. The loader puts this file first: enable directives must
// precede every declaration.
enable f16;
enable wgpu_cooperative_matrix;

// What the workgroup tiles hold, and the matrix types the kernel multiplies them as.
alias Element = f16;
alias MatrixA = coop_mat16x16<f16, A>;
alias MatrixB = coop_mat16x16<f16, B>;
alias MatrixC = coop_mat16x16<f32, C>;
// The blocks' side, and the padding that keeps each tile row (and each block's first element)
// on a 16-byte boundary: 8 f16s.
const MATRIX: u32 = 16u;
const PAD: u32 = 8u;
// The most C blocks one subgroup keeps: a 64 × 64 tile is 16 blocks, 4 per subgroup of 64.
const MAX_PASSES: u32 = 4u;

fn element(v: f32) -> Element {
    return f16(v);
}
