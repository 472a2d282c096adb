//! Who holds a server out of rotation: the answer `status` shows and the budget counts.

use serde::{Deserialize, Serialize};

/// Who holds a server out of rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Owner {
    /// In rotation; nobody holds it.
    None,
    /// An operator set MAINT/DRAIN (or weight 0) outside haproxy-drain.
    Operator,
    /// haproxy-drain took it out and will restore it.
    HaproxyDrain,
}

impl Owner {
    pub fn as_str(self) -> &'static str {
        match self {
            Owner::None => "none",
            Owner::Operator => "operator",
            Owner::HaproxyDrain => "haproxy-drain",
        }
    }
}
