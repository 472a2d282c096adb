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

/// Histogram `name`'s cumulative buckets `(le, count)`, summed over every label but `le` of the
/// samples matching `filter`, in order of `le`.
pub fn buckets(text: &str, name: &str, filter: &[(&str, &str)]) -> Vec<(f64, f64)> {
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    for sample in samples(text, &format!("{name}_bucket")) {
        let le = match sample.labels.get("le").map(String::as_str) {
            Some("+Inf") => f64::INFINITY,
            Some(le) => match le.parse() {
                Ok(le) => le,
                Err(_) => continue,
            },
            None => continue,
        };
        if !matches(&sample, filter) {
            continue;
        }
        match buckets.iter_mut().find(|(bound, _)| *bound == le) {
            Some((_, count)) => *count += sample.value,
            None => buckets.push((le, sample.value)),
        }
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    buckets
}

/// What `after` observed since `before` (same bucket bounds; a bound missing before counts 0).
pub fn delta(before: &[(f64, f64)], after: &[(f64, f64)]) -> Vec<(f64, f64)> {
    after
        .iter()
        .map(|(le, count)| {
            let old = before
                .iter()
                .find(|(b, _)| b == le)
                .map_or(0.0, |(_, c)| *c);
            (*le, (count - old).max(0.0))
        })
        .collect()
}

/// Adds cumulative bucket lists with the same bounds.
pub fn add(into: &mut Vec<(f64, f64)>, more: &[(f64, f64)]) {
    for (le, count) in more {
        match into.iter_mut().find(|(b, _)| b == le) {
            Some((_, c)) => *c += count,
            None => into.push((*le, *count)),
        }
    }
    into.sort_by(|a, b| a.0.total_cmp(&b.0));
}

/// The `q` quantile (0..1) of cumulative buckets as the upper bound of the bucket it falls in
/// (Prometheus' `histogram_quantile` without interpolation); `None` without observations.
pub fn quantile(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    buckets
        .iter()
        .find(|(_, count)| *count >= q * total)
        .map(|(bound, _)| *bound)
}
