//! The query API in-process: snapshot tests of the JSON Jaeger's UI and
//! Grafana read, and the precise errors for bad parameters.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;
use waymark_api::{ApiMetrics, ApiState, query_router};
use waymark_query::{QueryOptions, QueryService};
use waymark_storage::{EmbeddedConfig, EmbeddedStorage, Storage};

/// 2023-11-14T22:13:20Z: a fixed start so snapshots are stable.
const T0: u64 = 1_700_000_000_000_000_000;
const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

async fn app() -> (axum::Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        EmbeddedStorage::open(EmbeddedConfig::new(dir.path()))
            .await
            .unwrap(),
    );
    store
        .write(waymark_testkit::fixture_trace(T0))
        .await
        .unwrap();
    let state = ApiState {
        query: QueryService::new(store, QueryOptions::default()),
        metrics: Arc::new(ApiMetrics::default()),
    };
    (query_router(state), dir)
}

async fn get(app: &axum::Router, uri: &str) -> (StatusCode, Value) {
    let resp = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let v = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "{uri}: body is not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jaeger_trace_json_snapshot() {
    let (app, _d) = app().await;
    let (status, v) = get(&app, &format!("/api/traces/{TRACE}")).await;
    assert_eq!(status, StatusCode::OK);
    insta::assert_json_snapshot!("jaeger_trace", v);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_v3_trace_json_snapshot() {
    let (app, _d) = app().await;
    let (status, v) = get(&app, &format!("/api/v3/traces/{TRACE}")).await;
    assert_eq!(status, StatusCode::OK);
    insta::assert_json_snapshot!("v3_trace", v);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_summaries_snapshot() {
    let (app, _d) = app().await;
    let (status, v) = get(
        &app,
        "/api/v3/trace-summaries?query.serviceName=frontend&query.startTimeMin=2023-11-14T22:00:00.000Z&query.startTimeMax=2023-11-14T23:00:00.000Z&query.searchDepth=20",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    insta::assert_json_snapshot!("trace_summaries", v);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_as_jaeger_ui_sends_it() {
    let (app, _d) = app().await;
    let start = T0 / 1000 - 1_000_000;
    let end = T0 / 1000 + 1_000_000;
    // Bare keys for empty duration filters, as the UI sends them.
    let uri = format!(
        "/api/traces?end={end}&limit=20&lookback=custom&maxDuration&minDuration&service=payment&start={start}&tags=%7B%22error%22%3A%22true%22%7D"
    );
    let (status, v) = get(&app, &uri).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["total"], 1);
    assert_eq!(v["data"][0]["traceID"], TRACE);
    assert_eq!(
        v["data"][0]["spans"].as_array().unwrap().len(),
        2,
        "whole trace"
    );
    let (_, v) = get(&app, &format!("{uri}&minDuration=9ms")).await;
    assert_eq!(v["total"], 0, "the payment span lasts 8ms");
    let (_, v) = get(&app, &format!("/api/traces?service=frontend&start={start}&end={end}&tag=http.status_code:200&tag=cache.hit:true")).await;
    assert_eq!(v["total"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_and_operations() {
    let (app, _d) = app().await;
    let (_, v) = get(&app, "/api/services").await;
    assert_eq!(v["data"], serde_json::json!(["frontend", "payment"]));
    assert_eq!(v["total"], 2);
    let (_, v) = get(&app, "/api/services/payment/operations").await;
    assert_eq!(v["data"], serde_json::json!(["charge"]));
    let (_, v) = get(&app, "/api/operations?service=frontend&spanKind=server").await;
    assert_eq!(
        v["data"],
        serde_json::json!([{"name": "GET /checkout", "spanKind": "server"}])
    );
    let (_, v) = get(&app, "/api/v3/operations?service=payment").await;
    assert_eq!(
        v,
        serde_json::json!({"operations": [{"name": "charge", "spanKind": "client"}]})
    );
    let (_, v) = get(&app, "/api/v3/services").await;
    assert_eq!(v, serde_json::json!({"services": ["frontend", "payment"]}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependencies_without_a_batch_job() {
    let (app, _d) = app().await;
    let end_ms = T0 / 1_000_000 + 60_000;
    let (_, v) = get(
        &app,
        &format!("/api/dependencies?endTs={end_ms}&lookback=604800000"),
    )
    .await;
    assert_eq!(v["data"][0]["parent"], "frontend");
    assert_eq!(v["data"][0]["child"], "payment");
    assert_eq!(v["data"][0]["callCount"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_parameters_name_the_parameter() {
    let (app, _d) = app().await;
    let cases: &[(&str, StatusCode, &str)] = &[
        (
            "/api/traces/nothex",
            StatusCode::BAD_REQUEST,
            "invalid trace id",
        ),
        (
            "/api/traces/00000000000000000000000000000042",
            StatusCode::NOT_FOUND,
            "trace not found",
        ),
        (
            "/api/traces?service=a&limit=abc",
            StatusCode::BAD_REQUEST,
            "'limit'",
        ),
        (
            "/api/traces?service=a&minDuration=xyz",
            StatusCode::BAD_REQUEST,
            "'minDuration'",
        ),
        (
            "/api/traces?service=a&maxDuration=10",
            StatusCode::BAD_REQUEST,
            "'maxDuration'",
        ),
        (
            "/api/traces?service=a&tags=notjson",
            StatusCode::BAD_REQUEST,
            "'tags'",
        ),
        (
            "/api/traces?service=a&tag=nocolon",
            StatusCode::BAD_REQUEST,
            "'tag'",
        ),
        (
            "/api/traces?service=a&start=abc",
            StatusCode::BAD_REQUEST,
            "'start'",
        ),
        (
            "/api/traces?limit=5",
            StatusCode::BAD_REQUEST,
            "'service' is required",
        ),
        (
            "/api/operations",
            StatusCode::BAD_REQUEST,
            "'service' is required",
        ),
        (
            "/api/operations?service=a&spanKind=sideways",
            StatusCode::BAD_REQUEST,
            "spanKind",
        ),
        (
            "/api/dependencies?endTs=soon",
            StatusCode::BAD_REQUEST,
            "'endTs'",
        ),
    ];
    for (uri, status, needle) in cases {
        let (got, v) = get(&app, uri).await;
        assert_eq!(got, *status, "{uri}: {v}");
        assert_eq!(v["data"], Value::Null, "{uri}");
        let msg = v["errors"][0]["msg"].as_str().unwrap_or_default();
        assert!(
            msg.contains(needle),
            "{uri}: message {msg:?} should mention {needle:?}"
        );
        assert_eq!(v["errors"][0]["code"], status.as_u16(), "{uri}");
    }
    let v3: &[(&str, StatusCode, &str)] = &[
        (
            "/api/v3/traces/zzz",
            StatusCode::BAD_REQUEST,
            "invalid trace id",
        ),
        (
            "/api/v3/traces/00000000000000000000000000000042",
            StatusCode::NOT_FOUND,
            "trace not found",
        ),
        (
            "/api/v3/traces?query.serviceName=a",
            StatusCode::BAD_REQUEST,
            "startTimeMin",
        ),
        (
            "/api/v3/traces?query.start_time_min=yesterday&query.start_time_max=2024-01-01T00:00:00Z",
            StatusCode::BAD_REQUEST,
            "query.startTimeMin",
        ),
        (
            "/api/v3/trace-summaries?query.startTimeMin=2024-01-02T00:00:00Z&query.startTimeMax=2024-01-01T00:00:00Z",
            StatusCode::BAD_REQUEST,
            "before",
        ),
    ];
    for (uri, status, needle) in v3 {
        let (got, v) = get(&app, uri).await;
        assert_eq!(got, *status, "{uri}: {v}");
        assert_eq!(v["error"]["httpCode"], status.as_u16(), "{uri}");
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        assert!(
            msg.contains(needle),
            "{uri}: message {msg:?} should mention {needle:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transform_renders_otlp_json_without_storing() {
    let (app, _d) = app().await;
    let other = waymark_testkit::span(0x77, 1, None, "upload", "op", T0, 1000);
    let body = waymark_otlp::spans_to_otlp_json(&[other]).to_string();
    let resp = app
        .clone()
        .oneshot(
            Request::post("/api/transform")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = serde_json::from_slice(
        &axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(v["data"][0]["spans"][0]["operationName"], "op");
    assert_eq!(v["data"][0]["processes"]["p1"]["serviceName"], "upload");
    let (status, _) = get(&app, "/api/traces/77").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "transform must not store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_is_served_for_client_routes_but_not_api() {
    let (app, _d) = app().await;
    for path in [
        "/",
        "/search?service=x",
        &format!("/trace/{TRACE}"),
        "/dependencies",
        "/nowhere",
    ] {
        let resp = app
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        assert!(
            String::from_utf8_lossy(&body).contains("/assets/app.js"),
            "{path}"
        );
    }
    let resp = app
        .clone()
        .oneshot(Request::get("/assets/app.js").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let resp = app
        .clone()
        .oneshot(Request::get("/assets/nope.js").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let (status, v) = get(&app, "/api/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        v["errors"][0]["msg"]
            .as_str()
            .unwrap()
            .contains("/api/nope")
    );
}
