//! `gate::classify` as a table: which Docker API requests the gate holds until the container's
//! server is drained, and which pass straight through.

use haproxy_drain::gate::classify::{classify, Class, Gated, Kind};

fn gated(container: &str, kind: Kind) -> Class {
    Class::Gated(Gated {
        container: container.to_string(),
        kind,
    })
}

const PASS: Class = Class::PassThrough;

fn check(cases: &[(&str, &str, Option<&str>, Class)]) {
    for (method, path, query, expected) in cases {
        assert_eq!(
            &classify(method, path, *query),
            expected,
            "{method} {path}?{query:?}"
        );
    }
}

#[test]
fn stop_and_restart_with_and_without_a_version() {
    check(&[
        ("POST", "/containers/web/stop", None, gated("web", Kind::Stop)),
        ("POST", "/v1.41/containers/web/stop", Some("t=10"), gated("web", Kind::Stop)),
        ("POST", "/v1.24/containers/3f2a/restart", None, gated("3f2a", Kind::Restart)),
        ("POST", "/v1/containers/web/stop", None, gated("web", Kind::Stop)),
        (
            "POST",
            "/v1.41/containers/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef/stop",
            Some("t=3"),
            gated(
                "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                Kind::Stop,
            ),
        ),
        // A name given with its slash, as `docker stop /web` sends it.
        ("POST", "/containers//web/stop", None, gated("/web", Kind::Stop)),
        ("POST", "/containers/my%2Dweb/stop", None, gated("my-web", Kind::Stop)),
        // Not a version: `vfoo` is no prefix, so this is no container path at all.
        ("POST", "/vfoo/containers/web/stop", None, PASS),
        ("GET", "/containers/web/stop", None, PASS),
        ("POST", "/containers//stop", None, PASS),
        ("POST", "/containers/stop", None, PASS),
        ("POST", "/containers/web/start", None, PASS),
        ("POST", "/containers/web/wait", None, PASS),
        ("POST", "/containers/web/rename", Some("name=x"), PASS),
        ("POST", "/containers/create", Some("name=stop"), PASS),
        ("POST", "/containers/web/stopx", None, PASS),
        ("POST", "/images/web/stop", None, PASS),
    ]);
}

#[test]
fn kill_signals_are_parsed_like_the_engine_does() {
    let kill = |signal| Kind::Kill { signal };
    check(&[
        ("POST", "/containers/web/kill", None, gated("web", kill(9))),
        (
            "POST",
            "/v1.41/containers/web/kill",
            Some("signal="),
            gated("web", kill(9)),
        ),
        (
            "POST",
            "/containers/web/kill",
            Some("signal=SIGTERM"),
            gated("web", kill(15)),
        ),
        (
            "POST",
            "/containers/web/kill",
            Some("signal=TERM"),
            gated("web", kill(15)),
        ),
        (
            "POST",
            "/containers/web/kill",
            Some("signal=term"),
            gated("web", kill(15)),
        ),
        (
            "POST",
            "/containers/web/kill",
            Some("signal=15"),
            gated("web", kill(15)),
        ),
        (
            "POST",
            "/containers/web/kill",
            Some("signal=INT"),
            gated("web", kill(2)),
        ),
        (
            "POST",
            "/containers/web/kill",
            Some("x=1&signal=QUIT"),
            gated("web", kill(3)),
        ),
        (
            "POST",
            "/containers/web/kill",
            Some("signal=SIGUSR1"),
            gated("web", kill(10)),
        ),
        (
            "POST",
            "/containers/web/kill",
            Some("signal=HUP"),
            gated("web", kill(1)),
        ),
        // The engine answers 400 for these: nothing is stopped, nothing to hold back.
        ("POST", "/containers/web/kill", Some("signal=BOGUS"), PASS),
        ("POST", "/containers/web/kill", Some("signal=99"), PASS),
    ]);
}

#[test]
fn which_kills_terminate() {
    let kill = |signal| Kind::Kill { signal };
    let cases = [
        (kill(9), 15, true),
        (kill(15), 15, true),
        (kill(2), 15, true),
        (kill(3), 15, true),
        (kill(1), 15, false),
        (kill(10), 15, false),
        // The container's own stop signal ends it.
        (kill(10), 10, true),
        (kill(28), 28, true),
        (Kind::Stop, 15, true),
        (Kind::Restart, 10, true),
        (Kind::Remove, 15, true),
    ];
    for (kind, stop_signal, expected) in cases {
        assert_eq!(
            kind.terminates(stop_signal),
            expected,
            "{kind:?} / {stop_signal}"
        );
    }
}

#[test]
fn forced_remove_only() {
    check(&[
        (
            "DELETE",
            "/containers/web",
            Some("force=true"),
            gated("web", Kind::Remove),
        ),
        (
            "DELETE",
            "/v1.41/containers/web",
            Some("force=1"),
            gated("web", Kind::Remove),
        ),
        (
            "DELETE",
            "/containers/web",
            Some("v=1&force=True"),
            gated("web", Kind::Remove),
        ),
        (
            "DELETE",
            "/containers/web",
            Some("force=yes"),
            gated("web", Kind::Remove),
        ),
        (
            "DELETE",
            "/containers//web",
            Some("force=1"),
            gated("/web", Kind::Remove),
        ),
        // docker-py's remove_container (compose after a recreate) sends force=False.
        (
            "DELETE",
            "/v1.41/containers/abc",
            Some("v=False&link=False&force=False"),
            PASS,
        ),
        ("DELETE", "/containers/web", Some("force=0"), PASS),
        ("DELETE", "/containers/web", Some("force="), PASS),
        ("DELETE", "/containers/web", Some("force=no"), PASS),
        ("DELETE", "/containers/web", None, PASS),
        ("DELETE", "/containers/", Some("force=1"), PASS),
        ("DELETE", "/images/web", Some("force=1"), PASS),
        ("POST", "/containers/web", Some("force=1"), PASS),
    ]);
}

#[test]
fn everything_else_passes_through() {
    check(&[
        ("GET", "/_ping", None, PASS),
        ("HEAD", "/_ping", None, PASS),
        ("GET", "/v1.41/containers/json", Some("all=1"), PASS),
        ("GET", "/v1.41/events", None, PASS),
        ("POST", "/v1.41/build", Some("t=x"), PASS),
        (
            "POST",
            "/v1.41/containers/web/attach",
            Some("stream=1"),
            PASS,
        ),
        ("PUT", "/v1.41/containers/web/archive", Some("path=/"), PASS),
        ("POST", "/v1.41/exec/abc/start", None, PASS),
        ("GET", "", None, PASS),
        ("GET", "/", None, PASS),
        ("POST", "/v", None, PASS),
        ("POST", "/v1.41", None, PASS),
    ]);
}
