//! The availability budget: may one more server of a backend go out of rotation? Pure
//! arithmetic over what the controller counted.

/// What the controller counted in the target's backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetCount {
    /// Servers in the backend (at least the target).
    pub total: usize,
    /// Servers in rotation now, the target included when it is.
    pub ready: usize,
    /// The target is in rotation: draining a server already out costs nothing.
    pub target_in_rotation: bool,
    /// How many may be out at once (the configured budget applied to `total`).
    pub max_out: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetVerdict {
    Allowed,
    /// The drain would leave `ready_after` in rotation, more than `max_out` out.
    Refused {
        ready_after: usize,
        max_out: usize,
    },
}

pub fn verdict(count: BudgetCount) -> BudgetVerdict {
    if !count.target_in_rotation {
        return BudgetVerdict::Allowed;
    }
    let total = count.total.max(1);
    let out_after = total.saturating_sub(count.ready) + 1;
    if out_after > count.max_out {
        BudgetVerdict::Refused {
            ready_after: count.ready.saturating_sub(1),
            max_out: count.max_out,
        }
    } else {
        BudgetVerdict::Allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_table() {
        use BudgetVerdict::*;
        #[rustfmt::skip]
        let table = [
            // total, ready, target in rotation, max out → verdict
            (3, 3, true, 1, Allowed),
            (3, 2, true, 1, Refused { ready_after: 1, max_out: 1 }),
            (3, 2, false, 1, Allowed),
            (3, 2, true, 2, Allowed),
            (1, 1, true, 0, Refused { ready_after: 0, max_out: 0 }),
            (1, 1, true, 1, Allowed),
            (10, 7, true, 3, Refused { ready_after: 6, max_out: 3 }),
            (10, 8, true, 3, Allowed),
        ];
        for (total, ready, target_in_rotation, max_out, expected) in table {
            let count = BudgetCount {
                total,
                ready,
                target_in_rotation,
                max_out,
            };
            assert_eq!(verdict(count), expected, "{count:?}");
        }
    }
}
