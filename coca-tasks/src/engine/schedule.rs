//! Learning-rate schedule: linear warmup, then cosine decay to `min_ratio` x peak.

use serde::{Deserialize, Serialize};

/// Warmup + cosine schedule over `total_steps` optimiser steps.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WarmupCosine {
    pub warmup_steps: usize,
    pub total_steps: usize,
    /// Final learning rate as a share of the peak (0 = decay to zero).
    pub min_ratio: f64,
}

impl WarmupCosine {
    /// Multiplier of the peak learning rate at optimiser step `step` (0-based).
    pub fn factor(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return (step + 1) as f64 / self.warmup_steps as f64;
        }
        let span = self.total_steps.saturating_sub(self.warmup_steps).max(1);
        let progress = ((step - self.warmup_steps) as f64 / span as f64).min(1.0);
        self.min_ratio
            + (1.0 - self.min_ratio) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warms_up_linearly_then_decays_to_the_floor() {
        let s = WarmupCosine {
            warmup_steps: 10,
            total_steps: 110,
            min_ratio: 0.0,
        };
        assert!((s.factor(0) - 0.1).abs() < 1e-12);
        assert!((s.factor(9) - 1.0).abs() < 1e-12);
        assert!((s.factor(10) - 1.0).abs() < 1e-12);
        assert!((s.factor(60) - 0.5).abs() < 1e-12);
        assert!(s.factor(110).abs() < 1e-12);
        assert!(s.factor(500).abs() < 1e-12);
    }
}
