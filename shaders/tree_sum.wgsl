// tree_sum.wgsl — the workgroup sum of the per-channel reductions (batch_norm.wgsl,
// augment.wgsl, gemm_bias_reduce), prepended by the loader after common.wgsl to the shaders
// that use it. A fixed-shape tree in workgroup memory: no atomics, the same bits on every run.
// It owns its workgroup array (naga rejects workgroup pointers as function arguments), so it
// is a snippet of its own rather than part of common.wgsl. No bindings.

// Invocations per workgroup of the kernels that call tree_sum: a power of two, and 256 is what
// every device allows (WebGPU's minimum maxComputeInvocationsPerWorkgroup).
const TREE: u32 = 256u;

var<workgroup> tree_partials: array<f32, TREE>;

// Sums `value` over the workgroup (t = local_invocation_index); every invocation receives the
// total. Call it in uniform control flow: it has barriers.
fn tree_sum(t: u32, value: f32) -> f32 {
    tree_partials[t] = value;
    workgroupBarrier();
    for (var half = TREE / 2u; half > 0u; half /= 2u) {
        if t < half {
            tree_partials[t] += tree_partials[t + half];
        }
        workgroupBarrier();
    }
    let total = tree_partials[0];
    // Nobody may overwrite tree_partials[0] (a next tree_sum) before everyone has read it.
    workgroupBarrier();
    return total;
}
