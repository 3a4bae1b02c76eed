//! End-to-end tests of the `coca-cli` binary (one test binary).

mod commands;
mod common;
mod interrupt;
mod pipeline;
mod precision;
