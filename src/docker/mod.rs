//! The only module that talks to the Docker engine (through bollard).

pub mod recreate;
pub mod types;

pub use types::*;
