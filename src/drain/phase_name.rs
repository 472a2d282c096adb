//! Where a server is in its cycle, as the rest of the program sees it (status, snapshots, logs).

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PhaseName {
    Unknown,
    InRotation,
    Operator,
    Draining,
    Held,
    Gating,
    Warming,
    /// Taken out by the post-restore watch; back only with `ready`.
    Failed,
}

impl PhaseName {
    pub fn as_str(self) -> &'static str {
        match self {
            PhaseName::Unknown => "unknown",
            PhaseName::InRotation => "in_rotation",
            PhaseName::Operator => "operator",
            PhaseName::Draining => "draining",
            PhaseName::Held => "held",
            PhaseName::Gating => "gating",
            PhaseName::Warming => "warming",
            PhaseName::Failed => "failed",
        }
    }
}

impl fmt::Display for PhaseName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
