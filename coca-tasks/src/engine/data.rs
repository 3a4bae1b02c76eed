//! Deterministic, resumable batching with parallel host-side preparation and prefetch.
//!
//! The order of examples is a pure function of (seed, epoch): micro-batch `m` covers positions
//! `m * batch .. (m + 1) * batch` of the concatenated per-epoch permutations, and each item's
//! augmentation RNG is seeded from (seed, position). Resuming at micro-batch `m` therefore
//! reproduces exactly what an uninterrupted run would have seen, whatever the thread count.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::error::{Result, TaskError};
use crate::task::Task;

/// A 64-bit mix of several numbers (SplitMix64 finaliser), used to derive seeds.
pub fn mix(parts: &[u64]) -> u64 {
    let mut h: u64 = 0x9E37_79B9_7F4A_7C15;
    for &p in parts {
        h ^= p
            .wrapping_add(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(h << 6)
            .wrapping_add(h >> 2);
        h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        h ^= h >> 31;
    }
    h
}

/// The example order: item indices of micro-batch `m`.
#[derive(Debug, Clone)]
pub struct Order {
    n: usize,
    batch: usize,
    seed: u64,
}

impl Order {
    /// `n` items in batches of `batch`, shuffled per epoch with `seed`.
    pub fn new(n: usize, batch: usize, seed: u64) -> Self {
        Self { n, batch, seed }
    }

    fn permutation(&self, epoch: u64) -> Vec<usize> {
        let mut p: Vec<usize> = (0..self.n).collect();
        p.shuffle(&mut StdRng::seed_from_u64(mix(&[self.seed, epoch])));
        p
    }

    /// `(global position, item index)` of every example of micro-batch `m`.
    pub fn batch(&self, m: u64) -> Vec<(u64, usize)> {
        let start = m * self.batch as u64;
        let mut out = Vec::with_capacity(self.batch);
        let mut epoch = u64::MAX;
        let mut perm = Vec::new();
        for pos in start..start + self.batch as u64 {
            let e = pos / self.n as u64;
            if e != epoch {
                epoch = e;
                perm = self.permutation(e);
            }
            out.push((pos, perm[(pos % self.n as u64) as usize]));
        }
        out
    }

    /// Epoch (fractional) reached after `m` micro-batches.
    pub fn epoch_at(&self, m: u64) -> f64 {
        (m * self.batch as u64) as f64 / self.n as f64
    }
}

/// One prepared micro-batch and the items that failed.
pub struct Prepared<P> {
    pub micro_batch: u64,
    pub items: Vec<P>,
    /// `(item index, error)` of items that could not be prepared.
    pub failures: Vec<(usize, String)>,
}

/// Prepared items with their indices, and `(index, error)` of the items that failed.
pub type PreparedItems<P> = (Vec<(usize, P)>, Vec<(usize, String)>);

/// Prepares items of `indices` on `workers` threads, keeping their order.
pub fn prepare_parallel<T: Task>(
    task: &T,
    items: &[T::Item],
    indices: &[(u64, usize)],
    workers: usize,
    augment_seed: Option<u64>,
) -> PreparedItems<T::Prepared> {
    let chunk = indices.len().div_ceil(workers.max(1)).max(1);
    let results: Vec<Vec<(usize, Result<T::Prepared>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = indices
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|&(pos, idx)| {
                            let mut rng =
                                augment_seed.map(|seed| StdRng::seed_from_u64(mix(&[seed, pos])));
                            (idx, task.prepare(&items[idx], rng.as_mut()))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| vec![]))
            .collect()
    });
    let mut ok = Vec::with_capacity(indices.len());
    let mut failures = Vec::new();
    for (idx, r) in results.into_iter().flatten() {
        match r {
            Ok(p) => ok.push((idx, p)),
            Err(e) => failures.push((idx, e.to_string())),
        }
    }
    (ok, failures)
}

/// A background thread preparing micro-batches `start..` in order, `prefetch` ahead.
pub struct Prefetcher<P> {
    rx: Receiver<Prepared<P>>,
    handle: Option<JoinHandle<()>>,
}

impl<P: Send + 'static> Prefetcher<P> {
    /// Starts preparing micro-batches from `start`.
    pub fn start<T: Task<Prepared = P>>(
        task: Arc<T>,
        items: Arc<Vec<T::Item>>,
        order: Order,
        start: u64,
        workers: usize,
        prefetch: usize,
        augment_seed: Option<u64>,
    ) -> Self {
        let (tx, rx): (SyncSender<Prepared<P>>, _) = sync_channel(prefetch);
        let handle = std::thread::spawn(move || {
            let mut m = start;
            loop {
                let indices = order.batch(m);
                let (items_ok, failures) =
                    prepare_parallel(&*task, &items, &indices, workers, augment_seed);
                let items_ok = items_ok.into_iter().map(|(_, p)| p).collect();
                if tx
                    .send(Prepared {
                        micro_batch: m,
                        items: items_ok,
                        failures,
                    })
                    .is_err()
                {
                    return;
                }
                m += 1;
            }
        });
        Self {
            rx,
            handle: Some(handle),
        }
    }

    /// The next micro-batch.
    pub fn next(&self) -> Result<Prepared<P>> {
        self.rx
            .recv()
            .map_err(|_| TaskError::Config("the data loading thread stopped unexpectedly".into()))
    }
}

impl<P> Drop for Prefetcher<P> {
    fn drop(&mut self) {
        // Dropping the receiver ends the producer at its next send.
        let (_, rx) = sync_channel(1);
        drop(std::mem::replace(&mut self.rx, rx));
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Runs `f` on consecutive evaluation batches of `items` (no augmentation), passing the indices
/// of the items in the batch. Unreadable items are skipped and returned as messages, or are an
/// error in strict mode.
pub fn for_each_eval_batch<T: Task>(
    task: &T,
    items: &[T::Item],
    ctx: &crate::task::EvalContext,
    mut f: impl FnMut(&[usize], T::Batch) -> Result<()>,
) -> Result<Vec<String>> {
    let mut skipped = Vec::new();
    let indices: Vec<(u64, usize)> = (0..items.len()).map(|i| (i as u64, i)).collect();
    for chunk in indices.chunks(ctx.batch_size.max(1)) {
        let (ok, failures) = prepare_parallel(task, items, chunk, ctx.workers, None);
        for (idx, err) in failures {
            if ctx.strict {
                return Err(TaskError::Config(format!(
                    "evaluation item {idx}: {err} (strict mode)"
                )));
            }
            skipped.push(err);
        }
        if ok.is_empty() {
            continue;
        }
        let (idx, prepared): (Vec<usize>, Vec<T::Prepared>) = ok.into_iter().unzip();
        f(&idx, task.collate(prepared, &ctx.device))?;
    }
    Ok(skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_a_deterministic_permutation_per_epoch() {
        let o = Order::new(10, 4, 3);
        let mut seen: Vec<usize> = (0..5)
            .flat_map(|m| o.batch(m))
            .take(10)
            .map(|(_, i)| i)
            .collect();
        seen.sort();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        assert_eq!(o.batch(7), Order::new(10, 4, 3).batch(7));
        assert_ne!(o.batch(0), Order::new(10, 4, 4).batch(0));
    }
}
