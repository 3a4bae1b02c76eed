//! Integration tests of coca-core (one test binary: each binary links all of burn).

mod checkpoint_errors;
mod clippo;
mod common;
mod generation;
mod parity;
mod randaugment;
