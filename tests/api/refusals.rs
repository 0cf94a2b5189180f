//! Refusals are visible to operators: a flood of 429s shows in the node's log (with tenant and
//! request id, at most a line a second per code) and in its metrics, counted exactly.

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::Value;
use tenantry_tests::node_process::{free_port, NodeProcess};
use tenantry_tests::TestApp;

#[tokio::test]
async fn a_flood_of_rate_limited_requests_is_counted_and_logged_without_flooding_the_log() {
    let app = TestApp::spawn().await;
    app.create_tenant("flooded").await;
    let node = NodeProcess::start(&app, free_port(), &[]).await;
    let flooded = app.tenant("flooded").on(&node.url);
    // The free plan admits a burst of 20: most of these 80 are refused.
    let answers = join_all((0..80).map(|index| {
        let request = flooded
            .get("/v1/tenant")
            .header("X-Request-Id", &format!("flood-{index}"));
        async move { (index, request.send().await.unwrap().status()) }
    }))
    .await;
    let refused: Vec<String> = answers
        .iter()
        .filter(|(_, status)| *status == StatusCode::TOO_MANY_REQUESTS)
        .map(|(index, _)| format!("flood-{index}"))
        .collect();
    assert!(refused.len() >= 40, "only {} refused", refused.len());

    let metrics = tenantry_tests::metrics_text(&app.http, &node.url).await;
    let counted = tenantry_tests::refusals_counted(&metrics, 429, "rate_limited");
    assert_eq!(counted, Some(refused.len() as u64), "{metrics}");

    // The log names tenant and request id; like refusals within a second share one line.
    let lines: Vec<Value> = node
        .log_text()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["fields"]["message"] == "request refused")
        .collect();
    assert!(!lines.is_empty(), "no refusal logged:\n{}", node.log_text());
    for line in &lines {
        let fields = &line["fields"];
        assert_eq!(fields["tenant"], "flooded", "{line}");
        assert_eq!(fields["code"], "rate_limited", "{line}");
        let id = fields["request_id"].as_str().unwrap_or_default();
        assert!(refused.iter().any(|refused| refused == id), "{line}");
    }
    let covered: u64 = lines
        .iter()
        .map(|line| 1 + line["fields"]["unlogged"].as_u64().unwrap_or(0))
        .sum();
    assert!(covered <= refused.len() as u64);
    assert!(
        lines.len() < refused.len(),
        "one line per refusal: the log is not rate-limited"
    );
}
