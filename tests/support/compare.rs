//! The one numeric comparison of the tests: every value within `atol + rtol * |reference|`,
//! lengths checked, and NaN or infinity failing (a fold with `f32::max` would drop NaN and
//! pass). Included with `#[path]` by the three test binaries and the crates' unit tests.
#![allow(dead_code)]

/// Absolute and relative tolerance of a comparison: `|got - want| <= atol + rtol * |want|`.
#[derive(Debug, Clone, Copy)]
pub struct Tol {
    pub atol: f64,
    pub rtol: f64,
}

impl Tol {
    /// Exact equality (NaN still fails).
    pub const EXACT: Tol = Tol {
        atol: 0.0,
        rtol: 0.0,
    };

    /// Absolute tolerance only.
    pub const fn abs(atol: f64) -> Tol {
        Tol { atol, rtol: 0.0 }
    }

    /// Both tolerances.
    pub const fn new(atol: f64, rtol: f64) -> Tol {
        Tol { atol, rtol }
    }
}

/// What a passing comparison measured, for the test log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Closeness {
    /// Largest `|got - want|`.
    pub max_abs: f64,
    /// Largest `|got - want| / (atol + rtol * |want|)`: at most 1 when the comparison passes.
    pub worst_ratio: f64,
}

/// Checks `got` against the reference `want` value by value; panics naming `name`, the first
/// offending index and both values when a value is out of tolerance or not finite, or when the
/// lengths differ. A non-finite reference value is a broken fixture and fails too.
pub fn assert_close<G, W>(name: &str, got: &[G], want: &[W], tol: Tol) -> Closeness
where
    G: Copy + Into<f64>,
    W: Copy + Into<f64>,
{
    assert_eq!(
        got.len(),
        want.len(),
        "{name}: {} values, the reference has {}",
        got.len(),
        want.len()
    );
    let mut out = Closeness {
        max_abs: 0.0,
        worst_ratio: 0.0,
    };
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let (g, w): (f64, f64) = (g.into(), w.into());
        assert!(w.is_finite(), "{name}[{i}]: the reference value is {w}");
        assert!(g.is_finite(), "{name}[{i}]: got {g}, reference {w}");
        let diff = (g - w).abs();
        let bound = tol.atol + tol.rtol * w.abs();
        assert!(
            diff <= bound,
            "{name}[{i}]: got {g:e}, reference {w:e}: |diff| {diff:e} > {bound:e} \
             (atol {:e} + rtol {:e} * |ref|)",
            tol.atol,
            tol.rtol
        );
        out.max_abs = out.max_abs.max(diff);
        let ratio = if bound > 0.0 {
            diff / bound
        } else {
            f64::from(u8::from(diff > 0.0))
        };
        out.worst_ratio = out.worst_ratio.max(ratio);
    }
    out
}

/// [`assert_close`] for `(shape, values)` pairs, checking the shapes first.
pub fn assert_close_shaped(
    name: &str,
    got: &(Vec<usize>, Vec<f32>),
    want: &(Vec<usize>, Vec<f32>),
    tol: Tol,
) -> Closeness {
    assert_eq!(got.0, want.0, "{name}: shape");
    assert_close(name, &got.1, &want.1, tol)
}

#[cfg(test)]
mod self_tests {
    use super::*;

    #[test]
    #[should_panic(expected = "got NaN")]
    fn nan_fails() {
        assert_close("x", &[1.0f32, f32::NAN], &[1.0f32, 2.0], Tol::abs(1.0));
    }

    #[test]
    #[should_panic(expected = "values, the reference has")]
    fn length_mismatch_fails() {
        assert_close("x", &[1.0f32], &[1.0f32, 2.0], Tol::abs(1.0));
    }

    #[test]
    #[should_panic(expected = "|diff|")]
    fn relative_tolerance_checks_small_values() {
        // An all-zero gradient row against small reference values fails under atol + rtol.
        assert_close("g", &[0.0f32; 2], &[5e-5f32, -3e-5], Tol::new(1e-6, 1e-3));
    }

    #[test]
    fn within_tolerance_passes() {
        let c = assert_close("x", &[1.0005f64], &[1.0f64], Tol::new(0.0, 1e-3));
        assert!(c.worst_ratio <= 1.0 && c.max_abs > 0.0);
    }
}
