//! Signals the way Docker names them (`SIGUSR1`, `USR1`, `10`, `SIGRTMIN+3`), as numbers. Pure.

/// SIGTERM: what Docker sends on `docker stop` when no stop signal is configured.
pub const DEFAULT_STOP_SIGNAL: i32 = 15;

/// Linux signal numbers by name (x86_64/arm64 numbering, which is what Docker engines run on).
const SIGNALS: &[(&str, i32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("IOT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("POLL", 29),
    ("PWR", 30),
    ("SYS", 31),
];
const SIGRTMIN: i32 = 34;
const SIGRTMAX: i32 = 64;

/// Parses a signal the way Docker accepts it: `"SIGUSR1"`, `"USR1"`, `"sigusr1"`, `"10"`,
/// `"SIGRTMIN+3"`. `None` for anything else.
pub fn parse_signal(text: &str) -> Option<i32> {
    let text = text.trim();
    if let Ok(number) = text.parse::<i32>() {
        return (1..=SIGRTMAX).contains(&number).then_some(number);
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some((_, number)) = SIGNALS.iter().find(|(known, _)| *known == name) {
        return Some(*number);
    }
    let realtime = |base: i32, rest: &str| -> Option<i32> {
        let offset = match rest {
            "" => 0,
            _ => rest.parse::<i32>().ok()?,
        };
        let number = base + offset;
        (SIGRTMIN..=SIGRTMAX).contains(&number).then_some(number)
    };
    if let Some(rest) = name.strip_prefix("RTMIN") {
        return realtime(SIGRTMIN, rest.strip_prefix('+').unwrap_or(rest));
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        return match rest.strip_prefix('-') {
            Some(down) => realtime(SIGRTMAX, &format!("-{down}")),
            None if rest.is_empty() => Some(SIGRTMAX),
            None => None,
        };
    }
    None
}

/// `Config.StopSignal` as a number: missing, empty or unparsable means Docker's default, SIGTERM.
pub fn parse_stop_signal(config_value: Option<&str>) -> i32 {
    config_value
        .filter(|text| !text.trim().is_empty())
        .and_then(parse_signal)
        .unwrap_or(DEFAULT_STOP_SIGNAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_signals_in_every_spelling() {
        let cases: &[(Option<&str>, i32)] = &[
            (None, 15),
            (Some(""), 15),
            (Some("  "), 15),
            (Some("SIGUSR1"), 10),
            (Some("USR1"), 10),
            (Some("sigusr1"), 10),
            (Some("10"), 10),
            (Some("SIGTERM"), 15),
            (Some("SIGQUIT"), 3),
            (Some("SIGKILL"), 9),
            (Some("SIGWINCH"), 28),
            (Some("SIGRTMIN"), 34),
            (Some("SIGRTMIN+3"), 37),
            (Some("RTMAX-2"), 62),
            (Some("SIGRTMAX"), 64),
            (Some("SIGBOGUS"), 15),
            (Some("0"), 15),
            (Some("65"), 15),
            (Some("-3"), 15),
            (Some("SIGRTMIN+99"), 15),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_stop_signal(*input), *expected, "input {input:?}");
        }
    }
}
