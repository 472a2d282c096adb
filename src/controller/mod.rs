//! The controller: owns one task per mapped server and executes the drain machine's actions.

pub mod handle;

pub use handle::{ControllerHandle, Owner, ServerView, Target, Trigger};
