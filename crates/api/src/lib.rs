//! The HTTP APIs: Jaeger's query API (`/api/...`) as Jaeger's UI and
//! Grafana call it, the api_v3 HTTP gateway (`/api/v3/...`) with OTLP JSON
//! results, and the admin endpoints (`/metrics`, `/health`, `/ready`).
//!
//! Handlers parse parameters (naming the bad one in every error), call the
//! query service, and render the span model; they hold no storage logic.

pub mod admin;
pub mod grpc;
pub mod jaeger;
pub mod jaeger_json;
pub mod params;
pub mod ui;
pub mod v3;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use waymark_query::QueryService;

/// Query latency, per endpoint.
pub struct ApiMetrics {
    pub latency: Family<EndpointLabel, Histogram, fn() -> Histogram>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabel {
    pub endpoint: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Default for ApiMetrics {
    fn default() -> Self {
        ApiMetrics {
            latency: Family::new_with_constructor(latency_histogram),
        }
    }
}

impl ApiMetrics {
    pub fn register(&self, reg: &mut Registry) {
        reg.register(
            "waymark_query_duration_seconds",
            "Time to answer query API requests",
            self.latency.clone(),
        );
    }

    /// Records the time since `start` for `endpoint`.
    pub fn observe(&self, endpoint: &'static str, start: Instant) {
        self.latency
            .get_or_create(&EndpointLabel { endpoint })
            .observe(start.elapsed().as_secs_f64());
    }
}

/// Shared state of the query handlers.
#[derive(Clone)]
pub struct ApiState {
    pub query: QueryService,
    pub metrics: Arc<ApiMetrics>,
}

/// The query port's router: Jaeger `/api`, api_v3, and the web UI for
/// every other path. Every API route's latency is recorded in one place.
pub fn query_router(state: ApiState) -> Router {
    let metrics = state.metrics.clone();
    Router::new()
        .merge(jaeger::routes())
        .merge(v3::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            metrics,
            record_latency,
        ))
        .merge(ui::routes())
        .with_state(state)
}

/// The `endpoint` label of each query route, HTTP and gRPC.
fn endpoint_label(path: &str) -> Option<&'static str> {
    Some(match path {
        "/api/services" => "services",
        "/api/services/{service}/operations" | "/api/operations" => "operations",
        "/api/traces" => "search",
        "/api/traces/{id}" => "trace_by_id",
        "/api/dependencies" => "dependencies",
        "/api/transform" => "transform",
        "/api/archive/{id}" => "archive",
        "/api/v3/services" => "v3_services",
        "/api/v3/operations" => "v3_operations",
        "/api/v3/traces" => "v3_search",
        "/api/v3/traces/{id}" => "v3_trace_by_id",
        "/api/v3/trace-summaries" => "v3_trace_summaries",
        "/jaeger.api_v2.QueryService/GetTrace" => "grpc_v2_trace_by_id",
        "/jaeger.api_v2.QueryService/ArchiveTrace" => "grpc_v2_archive",
        "/jaeger.api_v2.QueryService/FindTraces" => "grpc_v2_search",
        "/jaeger.api_v2.QueryService/GetServices" => "grpc_v2_services",
        "/jaeger.api_v2.QueryService/GetOperations" => "grpc_v2_operations",
        "/jaeger.api_v2.QueryService/GetDependencies" => "grpc_v2_dependencies",
        "/jaeger.api_v3.QueryService/GetTrace" => "grpc_v3_trace_by_id",
        "/jaeger.api_v3.QueryService/FindTraces" => "grpc_v3_search",
        "/jaeger.api_v3.QueryService/GetServices" => "grpc_v3_services",
        "/jaeger.api_v3.QueryService/GetOperations" => "grpc_v3_operations",
        "/jaeger.api_v3.QueryService/GetDependencies" => "grpc_v3_dependencies",
        "/jaeger.api_v3.QueryService/FindTraceSummaries" => "grpc_v3_trace_summaries",
        _ => return None,
    })
}

/// Times each request under its endpoint's label: HTTP routes by their
/// matched path, gRPC calls by their method path. A streamed gRPC answer is
/// timed until its headers.
async fn record_latency(
    axum::extract::State(metrics): axum::extract::State<Arc<ApiMetrics>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    // gRPC methods are named by their path itself (tonic's router matches
    // them with a wildcard); HTTP routes by the template they matched.
    let endpoint = endpoint_label(req.uri().path()).or_else(|| {
        req.extensions()
            .get::<axum::extract::MatchedPath>()
            .and_then(|p| endpoint_label(p.as_str()))
    });
    let start = Instant::now();
    let resp = next.run(req).await;
    if let Some(e) = endpoint {
        metrics.observe(e, start);
    }
    resp
}

/// The gRPC query services (api_v2 and api_v3) with their latency
/// recorded like the HTTP routes'.
pub fn grpc_routes(query: QueryService, metrics: Arc<ApiMetrics>) -> tonic::service::Routes {
    let router = grpc::routes(query).prepare().into_axum_router().layer(
        axum::middleware::from_fn_with_state(metrics, record_latency),
    );
    tonic::service::Routes::from(router)
}

pub(crate) use waymark_model::now_unix_nanos as now_ns;

/// What a failed read means to the client, logged once here for every
/// endpoint: the kind decides the status (`waymark_edge::Failure`), so a
/// backend that is down answers 503 with a retry hint and corrupt data 500.
pub(crate) fn storage_failure(e: &waymark_storage::StorageError) -> waymark_edge::Failure {
    let failure = waymark_edge::Failure::from(e.kind);
    match failure {
        waymark_edge::Failure::Internal => tracing::error!(error = %e, "query failed"),
        _ => tracing::warn!(error = %e, "query failed"),
    }
    failure
}
