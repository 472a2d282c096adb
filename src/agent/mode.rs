//! Which of the three ways haproxy-drain drives HAProxy, decided once at start-up from the
//! sockets' privilege levels (`show cli level`) and `--agent-listen`. Pure.

use crate::haproxy::level::CliLevel;

/// The `--haproxy` value that means "no runtime API socket at all" (pull mode, blind).
pub const NO_SOCKET: &str = "none";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every socket is `level admin`: runtime API commands, as always. With `--agent-listen`
    /// the agent also answers, with the same decisions, so the two never contradict each other.
    Push,
    /// `--agent-listen` and a socket below admin: decisions reach HAProxy only as agent answers;
    /// sessions, checks and states are read through the (read-only) sockets.
    PullReadOnly,
    /// `--agent-listen` and no socket at all: answers only; nothing can be read back.
    PullBlind,
}

impl Mode {
    /// `levels` holds one entry per socket: its level, or `None` when it could not be read
    /// (HAProxy down at start-up). Admin commands are sent only when every socket is known to
    /// be admin; without `--agent-listen` nothing changes from before (push).
    pub fn decide(levels: &[Option<CliLevel>], agent_listen: bool) -> Mode {
        if !agent_listen {
            return Mode::Push;
        }
        if levels.is_empty() {
            return Mode::PullBlind;
        }
        if levels.iter().all(|l| l.is_some_and(CliLevel::is_admin)) {
            Mode::Push
        } else {
            Mode::PullReadOnly
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Push => "push",
            Mode::PullReadOnly => "pull (read-only socket)",
            Mode::PullBlind => "pull (no socket)",
        }
    }

    /// True when runtime API commands that change HAProxy may be sent.
    pub fn sends_commands(self) -> bool {
        self == Mode::Push
    }

    /// What the mode cannot do, one line each, for `check` and the start-up log.
    pub fn limits(self) -> &'static [&'static str] {
        match self {
            Mode::Push => &[
                "needs a `level admin` socket on every HAProxy (commands: set server, set weight, add/del server)",
            ],
            Mode::PullReadOnly => &[
                "reacts up to one `agent-inter` later than push mode (HAProxy asks, it is not told)",
                "cannot add or delete servers (`add server`): servers must be in haproxy.cfg, no `roll --surge`",
                "cannot change a server's address: containers need a stable address (published port, fixed --ip)",
                "cannot kill sessions left at the drain timeout (`shutdown sessions`)",
                "a server it holds out stays out whatever HAProxy's CLI says (the agent repeats `drain`/`maint`): use `haproxy-drain ready`",
            ],
            Mode::PullBlind => &[
                "reacts up to one `agent-inter` later than push mode (HAProxy asks, it is not told)",
                "no session count: a drain lasts until the container exits or its drain timeout",
                "cannot see HAProxy's state or its health checks: knows only servers HAProxy asked about, restores once HAProxy picked up the answer",
                "cannot add or delete servers, change addresses or kill sessions",
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CliLevel::{Admin, Operator, User};

    #[test]
    fn admin_commands_only_when_every_socket_is_known_admin() {
        let cases: [(&[Option<CliLevel>], bool, Mode); 8] = [
            (&[Some(Admin)], false, Mode::Push),
            (&[Some(User)], false, Mode::Push),
            (&[], false, Mode::Push),
            (&[Some(Admin)], true, Mode::Push),
            (&[Some(Admin), Some(Operator)], true, Mode::PullReadOnly),
            (&[Some(User)], true, Mode::PullReadOnly),
            (&[None], true, Mode::PullReadOnly),
            (&[], true, Mode::PullBlind),
        ];
        for (levels, agent, mode) in cases {
            assert_eq!(
                Mode::decide(levels, agent),
                mode,
                "{levels:?} agent={agent}"
            );
        }
        assert!(Mode::Push.sends_commands());
        assert!(!Mode::PullReadOnly.sends_commands() && !Mode::PullBlind.sends_commands());
    }
}
