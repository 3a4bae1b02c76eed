//! Integration tests of coca-tasks (one test binary: each binary links all of burn).

mod clippo;
mod common;
mod engine;
mod tasks;
