//! The Grafana dashboard (`deploy/grafana/hotbreaker.json`) and the promtool test of its panels
//! (`deploy/grafana/panels_test.yml`, run by `.ci/run`) stay in step: every panel's query is
//! evaluated there, and every series it reads is one `Registry::publish_metrics` writes.

use std::path::Path;

fn read(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The panels' queries, in order.
fn panel_queries() -> Vec<String> {
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/hotbreaker.json")).expect("valid JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    let queries: Vec<String> = panels
        .iter()
        .flat_map(|p| p["targets"].as_array().expect("targets").iter())
        .map(|t| t["expr"].as_str().expect("expr").to_owned())
        .collect();
    assert!(queries.len() >= 5, "{queries:?}");
    queries
}

#[test]
fn every_panel_query_is_evaluated_by_the_promtool_test() {
    let test = read("deploy/grafana/panels_test.yml");
    let tested: Vec<String> = test
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- expr: '"))
        .map(|e| e.strip_suffix('\'').expect("one line").replace("''", "'"))
        .collect();
    assert_eq!(tested, panel_queries());
}

#[test]
fn every_series_a_panel_reads_is_published() {
    let published = read("src/registry/export.rs");
    for query in panel_queries() {
        let mut rest = query.as_str();
        while let Some(at) = rest.find("hotbreaker_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            assert!(
                published.contains(&format!("\"{name}\"")),
                "{name} (in {query}) is not a series of src/registry/export.rs"
            );
            rest = &rest[at + name.len()..];
        }
    }
}
