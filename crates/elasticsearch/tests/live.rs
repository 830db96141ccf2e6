//! Live tests against a real Elasticsearch or OpenSearch cluster, run when
//! `WAYMARK_TEST_ES_URL` is set (see docs/elasticsearch.md for the other
//! variables); skipped, with the reason printed, otherwise. Every case
//! writes under a fresh index prefix and deletes its indices afterwards.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use waymark_elasticsearch::{ClientConfig, EsConfig, EsStorage, IndexConfig, Refresh};
use waymark_storage::Storage;
use waymark_testkit::conformance as c;

fn live_config(prefix: &str) -> Option<EsConfig> {
    let Ok(url) = std::env::var("WAYMARK_TEST_ES_URL") else {
        eprintln!(
            "skipped: WAYMARK_TEST_ES_URL is not set (no cluster to test against; see docs/elasticsearch.md)"
        );
        return None;
    };
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    Some(EsConfig {
        client: ClientConfig {
            urls: url.split(',').map(str::to_string).collect(),
            username: var("WAYMARK_TEST_ES_USERNAME"),
            password: var("WAYMARK_TEST_ES_PASSWORD"),
            api_key_file: var("WAYMARK_TEST_ES_API_KEY_FILE").map(Into::into),
            ca_file: var("WAYMARK_TEST_ES_CA_FILE").map(Into::into),
            tls_skip_verify: var("WAYMARK_TEST_ES_TLS_SKIP_VERIFY").as_deref() == Some("true"),
            timeout: Duration::from_secs(30),
            ..ClientConfig::default()
        },
        indices: IndexConfig {
            prefix: prefix.to_string(),
            ..IndexConfig::default()
        },
        templates: waymark_elasticsearch::TemplateOptions {
            shards: 1,
            replicas: 0,
            ..Default::default()
        },
        refresh: Refresh::WaitFor,
        delete_expired_indices: true,
        // The conformance suite writes spans up to ten days old.
        max_span_age: Duration::from_secs(12 * 24 * 3600),
        ..EsConfig::default()
    })
}

fn unique_prefix(case: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    format!(
        "wmtest-{}-{t}-{}",
        std::process::id(),
        case.replace('_', "-")
    )
}

async fn cleanup(store: &EsStorage, prefix: &str) {
    let _ = store
        .client()
        .json(Method::DELETE, &format!("/{prefix}-jaeger-*"), None)
        .await;
    for kind in ["span", "service", "dependencies"] {
        let _ = store
            .client()
            .json(
                Method::DELETE,
                &format!("/_index_template/{prefix}-jaeger-{kind}"),
                None,
            )
            .await;
        let _ = store
            .client()
            .json(
                Method::DELETE,
                &format!("/_template/{prefix}-jaeger-{kind}"),
                None,
            )
            .await;
    }
}

macro_rules! live_case {
    ($name:ident, |$s:ident| $body:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let prefix = unique_prefix(stringify!($name));
            let Some(cfg) = live_config(&prefix) else {
                return;
            };
            let store = Arc::new(
                EsStorage::open(cfg)
                    .await
                    .expect("connecting to the cluster"),
            );
            let $s = store.clone();
            $body.await;
            cleanup(&store, &prefix).await;
        }
    };
}

live_case!(write_and_read_back, |s| c::write_and_read_back(s.as_ref()));
live_case!(missing_trace_is_none, |s| c::missing_trace_is_none(
    s.as_ref()
));
live_case!(trace_split_across_flushes, |s| {
    c::trace_split_across_flushes(s.as_ref())
});
live_case!(search_semantics, |s| c::search_semantics(s.as_ref(), true));
live_case!(services_and_operations, |s| c::services_and_operations(
    s.as_ref()
));
live_case!(dependencies, |s| c::dependencies(s.as_ref()));
live_case!(retention, |s| c::retention(s.as_ref()));
live_case!(concurrent_writers, |s| c::concurrent_writers(
    s as Arc<dyn Storage>
));

/// A span document exactly as Jaeger writes it (tests/fixtures), indexed
/// directly, reads back through the backend with every field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_a_document_jaeger_wrote() {
    let prefix = unique_prefix("jaeger-doc");
    let Some(cfg) = live_config(&prefix) else {
        return;
    };
    let store = EsStorage::open(cfg)
        .await
        .expect("connecting to the cluster");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/span_current.json"
    ))
    .unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    // Move the document to now, so it is inside the read window.
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    let shift = now_us as i64 - doc["startTime"].as_i64().unwrap();
    doc["startTime"] = (now_us).into();
    doc["startTimeMillis"] = (now_us / 1000).into();
    if let Some(logs) = doc["logs"].as_array_mut() {
        for l in logs {
            l["timestamp"] = (l["timestamp"].as_i64().unwrap() + shift).into();
        }
    }
    let index = IndexConfig {
        prefix: prefix.clone(),
        ..IndexConfig::default()
    }
    .dated_index(waymark_elasticsearch::IndexKind::Span, now_us * 1000);
    store
        .client()
        .json(
            Method::PUT,
            &format!("/{index}/_doc/jaeger-written?refresh=true"),
            Some(&doc),
        )
        .await
        .unwrap();
    let expected = waymark_elasticsearch::SpanDocument::to_span(
        &serde_json::from_value(doc.clone()).unwrap(),
        &Default::default(),
    )
    .unwrap();
    let got = store
        .get_trace(expected.trace_id)
        .await
        .unwrap()
        .expect("the trace Jaeger wrote");
    assert_eq!(got.spans, vec![expected]);
    cleanup(&store, &prefix).await;
}
