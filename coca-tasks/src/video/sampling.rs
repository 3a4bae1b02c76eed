//! Which frames and which crops of a clip the model sees.
//!
//! - Training: TSN segment sampling. The `n` frames are split into `t` segments
//!   `[floor(i n / t), floor((i + 1) n / t))` and one frame is drawn uniformly from each.
//! - Evaluation: the segment centres `floor((i + 0.5) n / t)`; with `clips = K` views, view `k`
//!   takes `floor((i + (k + 0.5) / K) n / t)` (the same grid shifted by `k / K` of a segment).
//! - Fewer frames than `t` (`n < t`), in training and evaluation alike: frames repeat,
//!   index `floor(i n / t)` (each frame about `t / n` times, in order); such clips are counted.
//! - Spatial crops: the shorter side is resized to `S` (torchvision `Resize(S)`), then `crops`
//!   squares of side `S` are taken along the longer side, evenly spaced from one end to the
//!   other (1 = the centre crop, 3 = left/centre/right or top/centre/bottom).

use rand::Rng;

/// The policy for clips shorter than `t`: `floor(i n / t)` for `i < t`.
pub fn repeat_indices(n: usize, t: usize) -> Vec<usize> {
    (0..t).map(|i| i * n / t).collect()
}

/// Training indices (TSN): one random frame per segment; `n < t` repeats frames.
pub fn train_indices(n: usize, t: usize, rng: &mut impl Rng) -> Vec<usize> {
    if n < t {
        return repeat_indices(n, t);
    }
    (0..t)
        .map(|i| rng.random_range(i * n / t..(i + 1) * n / t))
        .collect()
}

/// Evaluation indices of view `k` of `clips` (segment centres for one view); `n < t` repeats.
pub fn eval_indices(n: usize, t: usize, clips: usize, k: usize) -> Vec<usize> {
    if n < t {
        return repeat_indices(n, t);
    }
    let clips = clips.max(1) as f64;
    (0..t)
        .map(|i| {
            let pos = (i as f64 + (k as f64 + 0.5) / clips) * n as f64 / t as f64;
            (pos.floor() as usize).min(n - 1)
        })
        .collect()
}

/// Offsets of `crops` crops of side `size` along a side of length `long >= size`: evenly
/// spaced from 0 to `long - size` (one crop: the centre, rounded half to even as torchvision).
pub fn crop_offsets(long: u32, size: u32, crops: usize) -> Vec<u32> {
    let span = f64::from(long.saturating_sub(size));
    if crops <= 1 {
        return vec![(span / 2.0).round_ties_even() as u32];
    }
    (0..crops)
        .map(|j| (span * j as f64 / (crops - 1) as f64).round_ties_even() as u32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn train_draws_one_frame_inside_each_segment() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut seen = vec![std::collections::BTreeSet::new(); 4];
        for _ in 0..200 {
            let idx = train_indices(10, 4, &mut rng);
            // Segments of 10 frames in 4: [0,2) [2,5) [5,7) [7,10).
            for (i, (&f, (lo, hi))) in idx
                .iter()
                .zip([(0, 2), (2, 5), (5, 7), (7, 10)])
                .enumerate()
            {
                assert!((lo..hi).contains(&f), "segment {i}: {f}");
                seen[i].insert(f);
            }
        }
        // Every frame of every segment comes up: the draw is random, not fixed.
        assert_eq!(
            seen.iter().map(|s| s.len()).collect::<Vec<_>>(),
            [2, 3, 2, 3]
        );
    }

    #[test]
    fn eval_is_deterministic_segment_centres() {
        assert_eq!(eval_indices(16, 8, 1, 0), [1, 3, 5, 7, 9, 11, 13, 15]);
        assert_eq!(eval_indices(10, 4, 1, 0), [1, 3, 6, 8]);
        assert_eq!(eval_indices(10, 4, 1, 0), eval_indices(10, 4, 1, 0));
        // Two views: quarter and three-quarter points of each segment.
        assert_eq!(eval_indices(16, 4, 2, 0), [1, 5, 9, 13]);
        assert_eq!(eval_indices(16, 4, 2, 1), [3, 7, 11, 15]);
        assert_eq!(eval_indices(8, 8, 1, 0), (0..8).collect::<Vec<_>>());
    }

    #[test]
    fn short_clips_repeat_frames() {
        assert_eq!(repeat_indices(3, 8), [0, 0, 0, 1, 1, 1, 2, 2]);
        let mut rng = StdRng::seed_from_u64(0);
        assert_eq!(train_indices(3, 8, &mut rng), [0, 0, 0, 1, 1, 1, 2, 2]);
        assert_eq!(eval_indices(1, 4, 3, 2), [0, 0, 0, 0]);
    }

    #[test]
    fn crops_span_the_long_side() {
        assert_eq!(crop_offsets(85, 64, 1), [10]); // 21 / 2 = 10.5 -> 10 (half to even)
        assert_eq!(crop_offsets(85, 64, 3), [0, 10, 21]);
        assert_eq!(crop_offsets(64, 64, 3), [0, 0, 0]);
    }
}
