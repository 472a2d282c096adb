//! Reading the daemon's `/metrics` text in the scale bench: the samples of one series with their
//! labels, summed or per server. Label values here never contain `"` or `,` (server, proxy and
//! command names), so a simple split is enough.

use std::collections::HashMap;

/// One sample line: its labels and its value.
#[derive(Debug, Clone)]
pub struct Sample {
    pub labels: HashMap<String, String>,
    pub value: f64,
}

/// Every sample of the series `name` (exactly: `name{…} v` or `name v`).
pub fn samples(text: &str, name: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(inner) => {
                    let (labels, value) = inner.split_once('}')?;
                    (parse_labels(labels), value)
                }
                None if rest.starts_with(' ') => (HashMap::new(), rest),
                None => return None,
            };
            let value = value.split_whitespace().next()?.parse().ok()?;
            Some(Sample { labels, value })
        })
        .collect()
}

fn parse_labels(text: &str) -> HashMap<String, String> {
    text.split("\",")
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            Some((key.trim().to_string(), value.trim_matches('"').to_string()))
        })
        .collect()
}

/// The sum of the samples of `name` whose labels include every `(key, value)` of `filter`.
pub fn sum(text: &str, name: &str, filter: &[(&str, &str)]) -> f64 {
    samples(text, name)
        .iter()
        .filter(|s| matches(s, filter))
        .map(|s| s.value)
        .sum()
}

/// Per `server` label, the sum of the samples of `name` in backend `proxy` matching `filter`.
pub fn per_server(
    text: &str,
    name: &str,
    proxy: &str,
    filter: &[(&str, &str)],
) -> HashMap<String, f64> {
    let mut out: HashMap<String, f64> = HashMap::new();
    for sample in samples(text, name) {
        if sample.labels.get("proxy").map(String::as_str) != Some(proxy)
            || !matches(&sample, filter)
        {
            continue;
        }
        if let Some(server) = sample.labels.get("server") {
            *out.entry(server.clone()).or_default() += sample.value;
        }
    }
    out
}

fn matches(sample: &Sample, filter: &[(&str, &str)]) -> bool {
    filter
        .iter()
        .all(|(k, v)| sample.labels.get(*k).map(String::as_str) == Some(*v))
}
