//! `status` through the daemon: HAProxy's view joined with the containers and with who holds
//! each server out of rotation. Rendering is pure; [`super::status`] decides when to use it.

use super::table::align_columns;
use crate::controller::handle::ServerView;

/// An aligned table with a header line, one line per server, sorted by backend/server.
pub fn render_table(views: &[ServerView]) -> String {
    let header = [
        "CONTAINER",
        "SERVER",
        "ADDRESS",
        "STATE",
        "WEIGHT",
        "SESSIONS",
        "CHECK",
        "OWNER",
        "PHASE",
    ]
    .map(String::from);
    let mut sorted: Vec<&ServerView> = views.iter().collect();
    sorted.sort_by(|a, b| (&a.backend, &a.server).cmp(&(&b.backend, &b.server)));
    let mut cells = vec![header.to_vec()];
    for view in sorted {
        let addr = match (view.addr.as_str(), view.port) {
            ("", _) => "-".to_string(),
            (ip, Some(port)) if ip.contains(':') => format!("[{ip}]:{port}"),
            (ip, Some(port)) => format!("{ip}:{port}"),
            (ip, None) => ip.to_string(),
        };
        let or_dash = |text: &str| {
            if text.is_empty() {
                "-".to_string()
            } else {
                text.to_string()
            }
        };
        cells.push(vec![
            view.container.clone().unwrap_or_else(|| "-".into()),
            format!("{}/{}", view.backend, view.server),
            addr,
            or_dash(&view.state),
            format!("{}/{}", view.weight, view.initial_weight),
            view.sessions.to_string(),
            or_dash(&view.check),
            view.owner.as_str().to_string(),
            or_dash(&view.phase),
        ]);
    }
    align_columns(&cells)
}

/// The daemon's `ServerView` list as a JSON array (the control API's own shape).
pub fn render_json(views: &[ServerView]) -> String {
    serde_json::to_string_pretty(views).unwrap_or_else(|_| "[]".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::Owner;

    fn view(server: &str, container: Option<&str>, state: &str, owner: Owner) -> ServerView {
        ServerView {
            backend: "be".into(),
            server: server.into(),
            container: container.map(str::to_string),
            addr: "172.18.0.2".into(),
            port: Some(8080),
            state: state.into(),
            weight: 10,
            initial_weight: 10,
            sessions: 3,
            check: "L7OK".into(),
            owner,
            phase: "in_rotation".into(),
        }
    }

    #[test]
    fn the_table_joins_containers_and_names_the_owner() {
        let views = [
            view("web2", None, "MAINT", Owner::Operator),
            view("web1", Some("app-1"), "DRAIN", Owner::HaproxyDrain),
        ];
        let table = render_table(&views);
        let rows: Vec<&str> = table.lines().collect();
        assert_eq!(rows.len(), 3, "{table}");
        assert!(rows[0].starts_with("CONTAINER") && rows[0].ends_with("PHASE"));
        let columns: Vec<&str> = rows[1].split_whitespace().collect();
        assert_eq!(
            columns,
            [
                "app-1",
                "be/web1",
                "172.18.0.2:8080",
                "DRAIN",
                "10/10",
                "3",
                "L7OK",
                "haproxy-drain",
                "in_rotation"
            ]
        );
        assert!(rows[2].starts_with("-          be/web2"), "{table}");
        let owner = rows[0].find("OWNER").unwrap();
        assert!(rows[2][owner..].starts_with("operator"), "{table}");

        let json: serde_json::Value = serde_json::from_str(&render_json(&views)).unwrap();
        assert_eq!(json[1]["owner"], "haproxy-drain");
        assert_eq!(json[1]["container"], "app-1");
    }
}
