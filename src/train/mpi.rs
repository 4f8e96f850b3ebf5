//! Data parallel across processes and machines through MPI (feature `mpi`): [`World`] is the
//! [`Collective`] of a run started with `mpirun`, one process (rank) per adapter.
//!
//! **Ranks and devices.** Every rank opens its own adapter and runs its own replicas
//! ([`DataParallel::joined`](crate::train::parallel::DataParallel::joined) with `first` the
//! index of its first replica). With one GPU per machine, run one rank per machine on its
//! default adapter; with several GPUs on a machine, rank [`World::local_rank`] of that machine
//! takes the `local_rank`-th of the adapters the name matches (modulo their count), so that
//! `mpirun -np 2` on a two-GPU workstation puts one rank on each.
//!
//! **Sums.** [`World::sum_in_rank_order`] gives every rank the same bits as one process adding
//! the ranks' values left to right (rank 0's, plus rank 1's, ...), which MPI's own
//! `MPI_Allreduce` does not promise (its order depends on the algorithm the library picks for
//! the message size and the number of ranks). Each rank owns a slice of the vector: an
//! all-to-all gives every rank the others' values of its slice, the rank adds them in rank
//! order, and an all-gather hands every slice's sum to every rank. With one replica per rank
//! this is exactly the in-process order of `train::parallel::average_gradients`; a rank with
//! several replicas first adds its own, which groups the terms differently.
//!
//! **Bytes moved.** For `n` floats over `N` ranks, each rank sends and receives
//! `4·n·(N−1)/N` bytes in the all-to-all and as many in the all-gather: `8·n·(N−1)/N` bytes each
//! way per sum, what a ring all-reduce moves. AlexNet's 61 M gradients (244 MB) between two
//! machines: 244 MB out and 244 MB in per rank and step. The vector goes in chunks of
//! [`CHUNK`] floats, so the extra host memory is about `4·CHUNK` bytes (16 MiB) whatever `n`
//! and `N` (not `N` copies of the whole vector). Each call first all-gathers one `u64` (the
//! ranks' lengths) so that ranks that disagree get a typed error instead of wrong sums.
//!
//! MPI's default error handler aborts the whole job when a transfer fails; `mpirun` then ends
//! every rank. [`World`] is dropped (`MPI_Finalize`) when the run is done; MPI cannot start
//! again in the same process.

use ::mpi::collective::{CommunicatorCollectives, Root};
use ::mpi::datatype::{Partition, PartitionMut};
use ::mpi::environment::Universe;
use ::mpi::topology::{Communicator, SimpleCommunicator};
use ::mpi::{Count, Threading};

use crate::error::{Error, Result};
use crate::train::parallel::{even_shares, Collective};

/// Floats per collective call: bounds the host memory of a sum and keeps every count within
/// MPI's `int`.
pub const CHUNK: usize = 1 << 22;

/// The processes of an MPI run (`MPI_COMM_WORLD`), and which of them share this machine.
pub struct World {
    world: SimpleCommunicator,
    local_rank: usize,
    local_size: usize,
    // Declared last so that it is dropped last: `MPI_Finalize` after the communicators.
    _universe: Universe,
}

impl World {
    /// Starts MPI in this process (once: the ranks are those `mpirun` started; a program run
    /// without `mpirun` is a run of one rank).
    ///
    /// # Errors
    /// [`Error::Mpi`] when MPI was already started in this process (by an earlier `World`,
    /// alive or dropped, or by other code).
    pub fn init() -> Result<Self> {
        let (universe, _) =
            ::mpi::initialize_with_threading(Threading::Serialized).ok_or_else(|| {
                Error::Mpi(
                    "MPI was already initialised in this process; World::init may be called \
                     once per process (MPI cannot start again after it finished)"
                        .into(),
                )
            })?;
        let world = universe.world();
        let machine = world.split_shared(world.rank());
        Ok(Self {
            local_rank: machine.rank() as usize,
            local_size: machine.size() as usize,
            world,
            _universe: universe,
        })
    }

    /// This process's place among the ranks on its machine (to choose its adapter).
    pub fn local_rank(&self) -> usize {
        self.local_rank
    }

    /// How many ranks run on this machine.
    pub fn local_size(&self) -> usize {
        self.local_size
    }

    /// The communicator of every rank, for transfers the [`Collective`] does not cover.
    pub fn communicator(&self) -> &SimpleCommunicator {
        &self.world
    }

    /// Fails on every rank unless every rank passed the same `len`.
    fn agree_on_length(&self, len: usize, what: &str) -> Result<()> {
        let mut lengths = vec![0u64; self.size()];
        self.world.all_gather_into(&(len as u64), &mut lengths[..]);
        if lengths.iter().any(|&l| l != len as u64) {
            return Err(Error::Mpi(format!(
                "the ranks disagree on the length of a {what}: {lengths:?} floats (rank by \
                 rank); expected the same on every rank"
            )));
        }
        Ok(())
    }
}

/// Where each rank's slice of `len` floats starts and how long it is.
fn slices(len: usize, ranks: usize) -> (Vec<Count>, Vec<Count>) {
    let counts: Vec<Count> = even_shares(len, ranks)
        .into_iter()
        .map(|c| c as Count)
        .collect();
    let displs = counts
        .iter()
        .scan(0, |at, &c| {
            let start = *at;
            *at += c;
            Some(start)
        })
        .collect();
    (counts, displs)
}

impl Collective for World {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn size(&self) -> usize {
        self.world.size() as usize
    }

    fn sum_in_rank_order(&self, values: &mut [f32]) -> Result<()> {
        self.agree_on_length(values.len(), "sum")?;
        let (ranks, rank) = (self.size(), self.rank());
        if ranks == 1 {
            return Ok(());
        }
        let most = CHUNK.min(values.len()).div_ceil(ranks);
        let mut pieces = vec![0f32; most * ranks];
        let mut sum = vec![0f32; most];
        for chunk in values.chunks_mut(CHUNK) {
            let (counts, displs) = slices(chunk.len(), ranks);
            let mine = counts[rank] as usize;
            // Rank q's values of this rank's slice land at pieces[q * mine..].
            let from_each = vec![mine as Count; ranks];
            let at: Vec<Count> = (0..ranks).map(|q| (q * mine) as Count).collect();
            self.world.all_to_all_varcount_into(
                &Partition::new(&chunk[..], &counts[..], &displs[..]),
                &mut PartitionMut::new(&mut pieces[..mine * ranks], &from_each[..], &at[..]),
            );
            let sum = &mut sum[..mine];
            sum.copy_from_slice(&pieces[..mine]);
            for piece in pieces[mine..mine * ranks].chunks_exact(mine.max(1)) {
                for (s, p) in sum.iter_mut().zip(piece) {
                    *s += p;
                }
            }
            self.world.all_gather_varcount_into(
                &sum[..],
                &mut PartitionMut::new(chunk, &counts[..], &displs[..]),
            );
        }
        Ok(())
    }

    fn broadcast(&self, values: &mut [f32]) -> Result<()> {
        self.agree_on_length(values.len(), "broadcast")?;
        let root = self.world.process_at_rank(0);
        for chunk in values.chunks_mut(CHUNK) {
            root.broadcast_into(chunk);
        }
        Ok(())
    }
}

/// A borrowed world joins a run too, so that the caller keeps it for its own transfers.
impl Collective for &World {
    fn rank(&self) -> usize {
        (**self).rank()
    }
    fn size(&self) -> usize {
        (**self).size()
    }
    fn sum_in_rank_order(&self, values: &mut [f32]) -> Result<()> {
        (**self).sum_in_rank_order(values)
    }
    fn broadcast(&self, values: &mut [f32]) -> Result<()> {
        (**self).broadcast(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_cover_the_chunk_in_rank_order() {
        assert_eq!(slices(7, 3), (vec![3, 2, 2], vec![0, 3, 5]));
        assert_eq!(slices(1, 2), (vec![1, 0], vec![0, 1]));
        assert_eq!(slices(0, 2), (vec![0, 0], vec![0, 0]));
    }
}
