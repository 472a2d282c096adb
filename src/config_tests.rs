//! Config parsing and validation.
use super::*;

#[test]
fn empty_file_gives_defaults() {
    assert_eq!(Config::parse("").unwrap(), Config::default());
}

#[test]
fn full_file_is_validated() {
    let config = Config::parse(
        r#"
        budget = "25%"
        reconcile_interval = "5s"
        [defaults]
        mode = "weight"
        drain_timeout = "10s"
        [backend_budgets]
        api = "2"
        [[rules]]
        match = "pxApp_*"
        backend = "pxapp_cluster"
        server = "app_{number}"
        port = 8080
        drain_timeout = "20s"
        "#,
    )
    .unwrap();
    assert_eq!(config.defaults.mode, DrainMode::Weight);
    assert_eq!(config.budget, Budget::Percent(25));
    assert_eq!(config.budget_for("api"), Budget::Count(2));
    assert_eq!(config.reconcile_interval, Duration::from_secs(5));
    let rule = &config.rules[0];
    assert_eq!(rule.settings.drain_timeout, Duration::from_secs(20));
    assert_eq!(rule.settings.mode, DrainMode::Weight, "inherits [defaults]");
    assert_eq!(rule.port, Some(8080));
}

#[test]
fn mistakes_are_named() {
    for (text, needle) in [
        ("bogus = 1", "unknown field"),
        (
            "[defaults]\ndrain_timeout = \"soon\"",
            "defaults.drain_timeout",
        ),
        ("[defaults]\nmode = \"gentle\"", "unknown variant"),
        ("budget = \"lots\"", "budget"),
        ("poll_interval = \"0s\"", "greater than zero"),
        (
            "[[rules]]\nmatch = \"a*\"\nbackend = \"b\"\nserver = \"{nme}\"",
            "rules[0].server",
        ),
    ] {
        let err = Config::parse(text).unwrap_err().to_string();
        assert!(err.contains(needle), "{text:?} gave {err}");
    }
}

#[test]
fn budget_limits() {
    assert_eq!(Budget::KeepOne.max_out(3), 2);
    assert_eq!(Budget::KeepOne.max_out(0), 0);
    assert_eq!(Budget::Percent(50).max_out(3), 1);
    assert_eq!(Budget::Count(2).max_out(10), 2);
    assert_eq!(Budget::parse("101%"), None);
}
