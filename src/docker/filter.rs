//! `run --filter label=KEY[=VALUE]` (repeatable): the containers this sidecar handles. Docker's
//! semantics: every filter must match (a container without the label, or with another value,
//! is not ours). They go to the engine with the list and the event subscription, and
//! [`LabelFilters::matches`] applies them to what `inspect` returns, so a sidecar never maps a
//! container another one handles — and reconciliation never sees it, so it leaves its server
//! alone rather than treating it as gone.

use std::collections::HashMap;

/// One `label=KEY` or `label=KEY=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelFilter {
    pub key: String,
    pub value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "--filter {text:?}: {why} (expected label=KEY or label=KEY=VALUE, as in `docker ps --filter`)"
)]
pub struct FilterError {
    pub text: String,
    pub why: &'static str,
}

impl LabelFilter {
    pub fn parse(text: &str) -> Result<Self, FilterError> {
        let error = |why| FilterError {
            text: text.to_string(),
            why,
        };
        let Some((kind, rest)) = text.split_once('=') else {
            return Err(error("no filter kind"));
        };
        if kind.trim() != "label" {
            return Err(error("only label filters are supported"));
        }
        let (key, value) = match rest.split_once('=') {
            Some((key, value)) => (key, Some(value.to_string())),
            None => (rest, None),
        };
        if key.is_empty() {
            return Err(error("empty label key"));
        }
        Ok(Self {
            key: key.to_string(),
            value,
        })
    }

    /// The value Docker's `label` filter takes.
    pub fn docker_value(&self) -> String {
        match &self.value {
            Some(value) => format!("{}={value}", self.key),
            None => self.key.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelFilters(pub Vec<LabelFilter>);

impl LabelFilters {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn matches(&self, labels: &HashMap<String, String>) -> bool {
        self.0.iter().all(|f| match (labels.get(&f.key), &f.value) {
            (Some(_), None) => true,
            (Some(actual), Some(wanted)) => actual == wanted,
            (None, _) => false,
        })
    }

    /// Adds the `label` entry to a filter map of the Engine API (nothing when empty).
    pub fn add_to(&self, filters: &mut HashMap<String, Vec<String>>) {
        if !self.is_empty() {
            filters.insert(
                "label".to_string(),
                self.0.iter().map(LabelFilter::docker_value).collect(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let ok = [
            ("label=hdt.host=a", "hdt.host", Some("a")),
            ("label=hdt.host", "hdt.host", None),
            ("label=k=v=w", "k", Some("v=w")),
            ("label=k=", "k", Some("")),
        ];
        for (text, key, value) in ok {
            let filter = LabelFilter::parse(text).unwrap();
            assert_eq!(filter.key, key, "{text}");
            assert_eq!(filter.value.as_deref(), value, "{text}");
        }
        for bad in ["hdt.host=a", "name=web", "label=", "label"] {
            assert!(LabelFilter::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_filter_must_match() {
        let filters = LabelFilters(vec![
            LabelFilter::parse("label=hdt.host=a").unwrap(),
            LabelFilter::parse("label=app").unwrap(),
        ]);
        let labels = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>()
        };
        assert!(filters.matches(&labels(&[("hdt.host", "a"), ("app", "x")])));
        assert!(!filters.matches(&labels(&[("hdt.host", "b"), ("app", "x")])));
        assert!(!filters.matches(&labels(&[("hdt.host", "a")])));
        assert!(LabelFilters::default().matches(&labels(&[])));
        let mut map = HashMap::new();
        filters.add_to(&mut map);
        assert_eq!(
            map["label"],
            vec!["hdt.host=a".to_string(), "app".to_string()]
        );
    }
}
