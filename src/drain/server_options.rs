//! How a decided weight and a dynamically added server are expressed to HAProxy. Pure.

use std::net::IpAddr;

use crate::haproxy::WeightSpec;

/// Static algorithms (static-rr, source) accept only `0%` and `100%`: say the two ends that way,
/// everything else as an absolute weight.
pub fn weight_spec(weight: u32, initial_weight: Option<u32>) -> WeightSpec {
    match initial_weight {
        Some(initial) if weight == initial => WeightSpec::Percent(100),
        _ if weight == 0 => WeightSpec::Percent(0),
        _ => WeightSpec::Absolute(weight),
    }
}

/// `add server` options. Dynamic servers inherit nothing from `default-server`, so the weight
/// and, when the backend runs checks, the check timers are spelled out.
pub fn dynamic_server_options(weight: u32, backend_checks: bool) -> Vec<String> {
    let mut options = vec!["weight".to_string(), weight.to_string()];
    if backend_checks {
        options.extend(["check", "inter", "1s", "rise", "2", "fall", "2"].map(String::from));
    }
    options
}

/// `add server` options of a surge copy's temporary server: the old server's weight and, when
/// the backend runs checks, checks every 100 ms of which one passed check makes it `UP`: the
/// daemon's own probe has already seen the app answer, so one check by HAProxy itself is what
/// is left to prove.
pub fn surge_server_options(weight: u32, backend_checks: bool) -> Vec<String> {
    let mut options = vec!["weight".to_string(), weight.to_string()];
    if backend_checks {
        let timers = [
            "check",
            "inter",
            "100ms",
            "fastinter",
            "100ms",
            "rise",
            "1",
            "fall",
            "2",
        ];
        options.extend(timers.map(String::from));
    }
    options
}

/// `ip:port` as `add server` wants it (IPv6 in brackets).
pub fn server_address(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
        IpAddr::V4(v4) => format!("{v4}:{port}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_as_haproxy_accepts_them() {
        #[rustfmt::skip]
        let table = [
            (37, Some(37), WeightSpec::Percent(100)),
            (0, Some(37), WeightSpec::Percent(0)),
            (0, None, WeightSpec::Percent(0)),
            (12, Some(37), WeightSpec::Absolute(12)),
            (12, None, WeightSpec::Absolute(12)),
            (256, Some(1), WeightSpec::Absolute(256)),
        ];
        for (weight, initial, expected) in table {
            assert_eq!(
                weight_spec(weight, initial),
                expected,
                "{weight} of {initial:?}"
            );
        }
    }

    #[test]
    fn a_surge_server_checks_fast_and_rises_on_one_check() {
        assert_eq!(surge_server_options(7, false), ["weight", "7"]);
        let with_checks = surge_server_options(7, true).join(" ");
        assert_eq!(
            with_checks,
            "weight 7 check inter 100ms fastinter 100ms rise 1 fall 2"
        );
    }

    #[test]
    fn dynamic_servers_spell_out_what_they_cannot_inherit() {
        assert_eq!(dynamic_server_options(3, false), ["weight", "3"]);
        assert_eq!(
            dynamic_server_options(1, true).join(" "),
            "weight 1 check inter 1s rise 2 fall 2"
        );
        assert_eq!(
            server_address("10.0.0.2".parse().unwrap(), 80),
            "10.0.0.2:80"
        );
        assert_eq!(
            server_address("fd00::2".parse().unwrap(), 80),
            "[fd00::2]:80"
        );
    }
}
