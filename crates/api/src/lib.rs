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
/// every other path.
pub fn query_router(state: ApiState) -> Router {
    Router::new()
        .merge(jaeger::routes())
        .merge(v3::routes())
        .merge(ui::routes())
        .with_state(state)
}

pub(crate) use waymark_model::now_unix_nanos as now_ns;
