// workgroup_any.wgsl — a workgroup's vote: did any invocation see something? A snippet for the
// checks that flag non-finite values (finite.wgsl, loss_scale.wgsl), so that a tensor bad
// everywhere costs one global atomic per workgroup, not one per element.

var<workgroup> any_flagged: atomic<u32>;

// Whether `flagged` held for any invocation of this workgroup. Every invocation must call it
// (it has barriers), from uniform control flow. Workgroup memory is not zero-initialised for
// us (see runtime/pipeline.rs), so the vote is cleared first.
fn workgroup_any(lid: u32, flagged: bool) -> bool {
    if lid == 0u {
        atomicStore(&any_flagged, 0u);
    }
    workgroupBarrier();
    if flagged {
        atomicOr(&any_flagged, 1u);
    }
    workgroupBarrier();
    return atomicLoad(&any_flagged) != 0u;
}
