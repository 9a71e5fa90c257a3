//! The one error type every layer may return for input a user got wrong.
//!
//! It sits at the bottom of the crate so that the workload layer can say
//! "unknown field" without knowing about the command line; only `cli` maps
//! it to an exit code.

/// A user error: names what was wrong and what is accepted.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

impl BadInput {
    pub fn new(msg: impl Into<String>) -> Self {
        BadInput(msg.into())
    }
}
