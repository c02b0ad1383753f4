//! Real servers on 127.0.0.1 for the black-box tests, and a runner for the real binary.
//!
//! Every server binds port 0 (or a given loopback port), runs on its own thread with its own tokio runtime, so
//! tests can be plain `#[test]` functions, and stops when dropped.
#![allow(dead_code)]

pub mod api;
pub mod daemon;
pub mod feeds;
pub mod http;
pub mod smtp;
pub mod webhook;
mod wire;
