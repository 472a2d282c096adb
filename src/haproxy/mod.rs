//! The only module that talks to HAProxy's runtime API.

pub mod types;

pub use types::*;
