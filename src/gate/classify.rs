//! Which Docker API requests the gate holds back: method + path + query in, [`Class`] out. Pure.
//!
//! Docker's router matches `/containers/{name:.*}/stop`, so a container reference is everything
//! between `/containers/` and the last path segment (a name given as `/web` arrives as
//! `/containers//web/stop`). The optional `/v1.NN` prefix is stripped first. Query values are
//! read the way the engine reads them (`httputils.BoolValue`, `signal.ParseSignal`).

use crate::docker::parse_signal;

/// SIGKILL: what `POST /containers/{id}/kill` sends without a `signal` parameter.
pub const DEFAULT_KILL_SIGNAL: i32 = 9;

/// Signals that end a container whatever its stop signal is: INT, QUIT, KILL, TERM (the same set
/// the watcher drains on).
pub const TERMINATING_SIGNALS: [i32; 4] = [2, 3, 9, 15];

/// What a request would do to a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `POST /containers/{id}/stop`.
    Stop,
    /// `POST /containers/{id}/restart` (a stop, then a start).
    Restart,
    /// `POST /containers/{id}/kill` with this signal (parsed; the default is SIGKILL).
    Kill { signal: i32 },
    /// `DELETE /containers/{id}?force=…` with force set (kills a running container).
    Remove,
}

impl Kind {
    /// A bounded metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Stop => "stop",
            Kind::Restart => "restart",
            Kind::Kill { .. } => "kill",
            Kind::Remove => "remove",
        }
    }

    /// Whether this request ends a container whose configured stop signal is `stop_signal`:
    /// a kill only with a terminating signal or the container's own stop signal.
    pub fn terminates(self, stop_signal: i32) -> bool {
        match self {
            Kind::Kill { signal } => TERMINATING_SIGNALS.contains(&signal) || signal == stop_signal,
            Kind::Stop | Kind::Restart | Kind::Remove => true,
        }
    }
}

/// A request that would stop a container, if that container is mapped and running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gated {
    /// The reference as the client gave it: a name (maybe with its leading `/`), a full id or an
    /// id prefix. The engine resolves it; so does our inspect.
    pub container: String,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    Gated(Gated),
    PassThrough,
}

/// Classifies one request. Anything not recognised passes through: the engine answers it.
pub fn classify(method: &str, path: &str, query: Option<&str>) -> Class {
    let path = strip_version(path);
    let Some(rest) = path.strip_prefix("/containers/") else {
        return Class::PassThrough;
    };
    let gated = |container: &str, kind| {
        let container = percent_decode(container);
        if container.trim_start_matches('/').is_empty() {
            return Class::PassThrough;
        }
        Class::Gated(Gated { container, kind })
    };
    match method {
        "POST" => {
            let Some((container, action)) = rest.rsplit_once('/') else {
                return Class::PassThrough;
            };
            match action {
                "stop" => gated(container, Kind::Stop),
                "restart" => gated(container, Kind::Restart),
                "kill" => {
                    let signal = match query_value(query, "signal") {
                        None => DEFAULT_KILL_SIGNAL,
                        Some(text) if text.trim().is_empty() => DEFAULT_KILL_SIGNAL,
                        // The engine refuses an unknown signal (400): nothing stops.
                        Some(text) => match parse_signal(&text) {
                            Some(signal) => signal,
                            None => return Class::PassThrough,
                        },
                    };
                    gated(container, Kind::Kill { signal })
                }
                _ => Class::PassThrough,
            }
        }
        "DELETE" if bool_value(query_value(query, "force").as_deref()) => {
            // `DELETE /containers/{name:.*}`: the whole rest is the reference.
            gated(rest, Kind::Remove)
        }
        _ => Class::PassThrough,
    }
}

/// `/v1.41/containers/x/stop` → `/containers/x/stop`; a path without a version is unchanged.
fn strip_version(path: &str) -> &str {
    let Some(rest) = path.strip_prefix("/v") else {
        return path;
    };
    let end = rest.find('/').unwrap_or(rest.len());
    let version = &rest[..end];
    let numeric = !version.is_empty()
        && version.chars().all(|c| c.is_ascii_digit() || c == '.')
        && version.chars().next().is_some_and(|c| c.is_ascii_digit());
    if numeric {
        &rest[end..]
    } else {
        path
    }
}

/// The engine's `httputils.BoolValue`: anything but empty, `0`, `no`, `false`, `none` is true.
fn bool_value(value: Option<&str>) -> bool {
    match value {
        None => false,
        Some(text) => !matches!(
            text.trim().to_ascii_lowercase().as_str(),
            "" | "0" | "no" | "false" | "none"
        ),
    }
}

/// The first value of `key` in a query string, percent-decoded (`+` is a space).
fn query_value(query: Option<&str>, key: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(name) == key).then(|| percent_decode(&value.replace('+', " ")))
    })
}

/// `%2F` → `/`; malformed escapes are kept as they are (the engine will refuse the name).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_never_panics_on_odd_input() {
        for text in ["%", "%4", "%zz", "%e2%82", "a%2", "%%%"] {
            let _ = percent_decode(text);
            let _ = classify("POST", &format!("/containers/{text}/stop"), Some(text));
            let _ = classify(
                "DELETE",
                &format!("/containers/{text}"),
                Some(&format!("force={text}")),
            );
        }
        assert_eq!(percent_decode("a%2Fb"), "a/b");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(
            query_value(Some("signal=SIG%54ERM"), "signal").as_deref(),
            Some("SIGTERM")
        );
    }
}
