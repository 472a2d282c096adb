//! The server-name template of a rule: `{name}` is the container name, `{number}` the last run
//! of digits in it (`pxApp_12` → `12`). Checked when the config is loaded, rendered per container.

use std::fmt;

/// A validated server-name template, e.g. `app_{number}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTemplate(String);

impl Default for ServerTemplate {
    /// `{name}`: the server is named like the container.
    fn default() -> Self {
        Self("{name}".to_string())
    }
}

impl ServerTemplate {
    /// Accepts only the `{name}` and `{number}` placeholders and a result HAProxy can take as a
    /// server name (non-empty, no `/`); the error says what to write instead.
    pub fn parse(template: &str) -> Result<Self, String> {
        let mut rest = template;
        while let Some(start) = rest.find('{') {
            let end = rest[start..]
                .find('}')
                .ok_or_else(|| format!("unclosed '{{' in '{template}'"))?;
            match &rest[start + 1..start + end] {
                "name" | "number" => {}
                other => {
                    return Err(format!(
                        "unknown placeholder {{{other}}}; use {{name}} or {{number}}"
                    ))
                }
            }
            rest = &rest[start + end + 1..];
        }
        if template.is_empty() || template.contains('/') {
            return Err("a server name must be non-empty and contain no '/'".into());
        }
        Ok(Self(template.to_string()))
    }

    /// The server name for one container; fails when `{number}` finds no digits in its name.
    pub fn render(&self, container: &str) -> Result<String, String> {
        let mut out = self.0.replace("{name}", container);
        if out.contains("{number}") {
            let number = last_number(container).ok_or_else(|| {
                format!("{{number}} needs digits in the container name '{container}'")
            })?;
            out = out.replace("{number}", number);
        }
        Ok(out)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServerTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn last_number(name: &str) -> Option<&str> {
    let end = name.rfind(|c: char| c.is_ascii_digit())? + 1;
    // After the last non-digit *character*: `+ 1` would land inside a multi-byte one (fuzzing).
    let start = name[..end]
        .char_indices()
        .rev()
        .find(|(_, c)| !c.is_ascii_digit())
        .map_or(0, |(i, c)| i + c.len_utf8());
    Some(&name[start..end])
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_number_after_a_multibyte_character() {
        assert_eq!(super::last_number("pxApp_\u{5d7}12d"), Some("12"));
        assert_eq!(super::last_number("\u{1f600}7"), Some("7"));
        assert_eq!(super::last_number("web"), None);
    }

    use super::*;

    #[test]
    fn templates() {
        assert!(ServerTemplate::parse("app_{number}").is_ok());
        assert!(ServerTemplate::parse("{name}").is_ok());
        assert!(ServerTemplate::parse("{nam}").is_err());
        assert!(ServerTemplate::parse("a{").is_err());
        assert_eq!(last_number("pxApp_12b"), Some("12"));
        assert_eq!(last_number("web"), None);
    }

    #[test]
    fn renders_name_and_number() {
        let template = ServerTemplate::parse("app_{number}").unwrap();
        assert_eq!(template.render("pxApp_12").as_deref(), Ok("app_12"));
        assert!(template.render("web").unwrap_err().contains("digits"));
        assert_eq!(
            ServerTemplate::default().render("web").as_deref(),
            Ok("web")
        );
    }
}
