//! Every query endpoint, HTTP and gRPC, answers each storage error kind
//! with the documented status: a store that cannot answer now (down,
//! refusing, an I/O error) gives 503 / `UNAVAILABLE` with `Retry-After`, an
//! invalid request 400 / `INVALID_ARGUMENT`, corrupt data 500 / `INTERNAL`
//! without a retry hint.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tonic::Code;
use tower::ServiceExt;
use waymark_api::grpc::GrpcQuery;
use waymark_api::{ApiMetrics, ApiState, query_router};
use waymark_proto::jaeger::api_v2 as v2;
use waymark_proto::jaeger::api_v3 as v3;
use waymark_query::{QueryOptions, QueryService};
use waymark_storage::{EmbeddedConfig, EmbeddedStorage, StorageErrorKind};
use waymark_testkit::faulty::FaultyStorage;

const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

const KINDS: [(StorageErrorKind, StatusCode, Code, bool); 4] = [
    (
        StorageErrorKind::Unavailable,
        StatusCode::SERVICE_UNAVAILABLE,
        Code::Unavailable,
        true,
    ),
    (
        StorageErrorKind::Io,
        StatusCode::SERVICE_UNAVAILABLE,
        Code::Unavailable,
        true,
    ),
    (
        StorageErrorKind::Invalid,
        StatusCode::BAD_REQUEST,
        Code::InvalidArgument,
        false,
    ),
    (
        StorageErrorKind::Corrupt,
        StatusCode::INTERNAL_SERVER_ERROR,
        Code::Internal,
        false,
    ),
];

async fn setup() -> (Arc<FaultyStorage>, QueryService, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let inner = EmbeddedStorage::open(EmbeddedConfig::new(dir.path()))
        .await
        .unwrap();
    let store = Arc::new(FaultyStorage::new(Arc::new(inner)));
    let query = QueryService::new(store.clone(), QueryOptions::default());
    (store, query, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_http_query_endpoint_maps_storage_errors() {
    let (store, query, _dir) = setup().await;
    let app = query_router(ApiState {
        query,
        metrics: Arc::new(ApiMetrics::default()),
    });
    let now_us = waymark_testkit::now_ns() / 1_000;
    let endpoints = [
        "/api/services".to_string(),
        "/api/services/frontend/operations".to_string(),
        "/api/operations?service=frontend".to_string(),
        "/api/traces?service=frontend&lookback=1h".to_string(),
        format!("/api/traces/{TRACE}"),
        format!(
            "/api/dependencies?endTs={}&lookback=3600000",
            now_us / 1_000
        ),
        "/api/v3/services".to_string(),
        "/api/v3/operations?service=frontend".to_string(),
        "/api/v3/traces?query.service_name=frontend&query.start_time_min=2024-01-01T00:00:00Z&query.start_time_max=2030-01-01T00:00:00Z".to_string(),
        format!("/api/v3/traces/{TRACE}"),
        "/api/v3/trace-summaries?query.service_name=frontend&query.start_time_min=2024-01-01T00:00:00Z&query.start_time_max=2030-01-01T00:00:00Z".to_string(),
    ];
    for uri in &endpoints {
        // Healthy first, so that a 4xx for bad parameters cannot pass as
        // a mapped storage error.
        store.set_fault(None);
        let resp = app
            .clone()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert!(
            resp.status() == StatusCode::OK || resp.status() == StatusCode::NOT_FOUND,
            "{uri}: healthy store answered {}",
            resp.status()
        );
        for (kind, status, _, retry) in KINDS {
            store.set_fault(Some(kind));
            let resp = app
                .clone()
                .oneshot(Request::get(uri).body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(resp.status(), status, "{uri}: {kind:?}");
            assert_eq!(
                resp.headers().contains_key("retry-after"),
                retry,
                "{uri}: {kind:?}: Retry-After"
            );
            let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                text.contains("injected fault"),
                "{uri}: {kind:?}: the message says what failed: {text}"
            );
        }
    }
}

fn ts(s: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: s,
        nanos: 0,
    })
}

/// The code of each gRPC query call against the store as it is now.
async fn grpc_codes(q: &GrpcQuery) -> Vec<(&'static str, Code)> {
    use tonic::Request;
    use v2::query_service_server::QueryService as V2;
    use v3::query_service_server::QueryService as V3;
    let id = hex::decode(TRACE).unwrap();
    let now = (waymark_testkit::now_ns() / 1_000_000_000) as i64;
    let code = |r: Result<(), tonic::Status>| r.err().map_or(Code::Ok, |s| s.code());
    let v2q = v2::TraceQueryParameters {
        service_name: "frontend".into(),
        start_time_min: ts(now - 3600),
        start_time_max: ts(now),
        ..Default::default()
    };
    let v3q = v3::TraceQueryParameters {
        service_name: "frontend".into(),
        start_time_min: ts(now - 3600),
        start_time_max: ts(now),
        ..Default::default()
    };
    vec![
        (
            "v2 GetTrace",
            code(
                V2::get_trace(
                    q,
                    Request::new(v2::GetTraceRequest {
                        trace_id: id.clone(),
                        ..Default::default()
                    }),
                )
                .await
                .map(|_| ()),
            ),
        ),
        (
            "v2 FindTraces",
            code(
                V2::find_traces(q, Request::new(v2::FindTracesRequest { query: Some(v2q) }))
                    .await
                    .map(|_| ()),
            ),
        ),
        (
            "v2 GetServices",
            code(
                V2::get_services(q, Request::new(v2::GetServicesRequest {}))
                    .await
                    .map(|_| ()),
            ),
        ),
        (
            "v2 GetOperations",
            code(
                V2::get_operations(
                    q,
                    Request::new(v2::GetOperationsRequest {
                        service: "frontend".into(),
                        ..Default::default()
                    }),
                )
                .await
                .map(|_| ()),
            ),
        ),
        (
            "v2 GetDependencies",
            code(
                V2::get_dependencies(
                    q,
                    Request::new(v2::GetDependenciesRequest {
                        start_time: ts(now - 3600),
                        end_time: ts(now),
                    }),
                )
                .await
                .map(|_| ()),
            ),
        ),
        (
            "v3 GetTrace",
            code(
                V3::get_trace(
                    q,
                    Request::new(v3::GetTraceRequest {
                        trace_id: TRACE.into(),
                        ..Default::default()
                    }),
                )
                .await
                .map(|_| ()),
            ),
        ),
        (
            "v3 FindTraces",
            code(
                V3::find_traces(
                    q,
                    Request::new(v3::FindTracesRequest {
                        query: Some(v3q.clone()),
                    }),
                )
                .await
                .map(|_| ()),
            ),
        ),
        (
            "v3 GetServices",
            code(
                V3::get_services(q, Request::new(v3::GetServicesRequest {}))
                    .await
                    .map(|_| ()),
            ),
        ),
        (
            "v3 GetOperations",
            code(
                V3::get_operations(
                    q,
                    Request::new(v3::GetOperationsRequest {
                        service: "frontend".into(),
                        ..Default::default()
                    }),
                )
                .await
                .map(|_| ()),
            ),
        ),
        (
            "v3 GetDependencies",
            code(
                V3::get_dependencies(
                    q,
                    Request::new(v3::GetDependenciesRequest {
                        start_time: ts(now - 3600),
                        end_time: ts(now),
                    }),
                )
                .await
                .map(|_| ()),
            ),
        ),
        (
            "v3 FindTraceSummaries",
            code(
                V3::find_trace_summaries(
                    q,
                    Request::new(v3::FindTraceSummariesRequest { query: Some(v3q) }),
                )
                .await
                .map(|_| ()),
            ),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_grpc_query_call_maps_storage_errors() {
    let (store, query, _dir) = setup().await;
    let q = GrpcQuery { query };
    for (call, code) in grpc_codes(&q).await {
        assert!(
            code == Code::Ok || code == Code::NotFound,
            "{call}: healthy store answered {code:?}"
        );
    }
    for (kind, _, want, _) in KINDS {
        store.set_fault(Some(kind));
        for (call, code) in grpc_codes(&q).await {
            assert_eq!(code, want, "{call}: {kind:?}");
        }
    }
}

/// The latency of every API route is recorded, under a stable label, by
/// one layer rather than by each handler.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_http_query_endpoint_is_timed() {
    let (_store, query, _dir) = setup().await;
    let metrics = Arc::new(waymark_api::ApiMetrics::default());
    let app = query_router(ApiState {
        query,
        metrics: metrics.clone(),
    });
    let calls = [
        ("/api/services", "services"),
        ("/api/services/frontend/operations", "operations"),
        ("/api/traces?service=frontend&lookback=1h", "search"),
        (
            "/api/traces/0af7651916cd43dd8448eb211c80319c",
            "trace_by_id",
        ),
        (
            "/api/dependencies?endTs=1700000000000&lookback=3600000",
            "dependencies",
        ),
        ("/api/v3/services", "v3_services"),
        ("/api/v3/operations?service=frontend", "v3_operations"),
        (
            "/api/v3/traces/0af7651916cd43dd8448eb211c80319c",
            "v3_trace_by_id",
        ),
    ];
    for (uri, label) in calls {
        app.clone()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let mut text = String::new();
        let mut reg = prometheus_client::registry::Registry::default();
        metrics.register(&mut reg);
        prometheus_client::encoding::text::encode(&mut text, &reg).unwrap();
        assert!(
            text.contains(&format!(
                "waymark_query_duration_seconds_count{{endpoint=\"{label}\"}} 1"
            )),
            "{uri} is not timed as {label}:\n{text}"
        );
    }
}
