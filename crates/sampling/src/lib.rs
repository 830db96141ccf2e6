//! Remote sampling: tells Jaeger clients (and OpenTelemetry's
//! `jaegerremotesampler`) how to sample, from a strategies file in Jaeger's
//! JSON format (`default_strategy`, `service_strategies` with probabilistic
//! or rate-limiting types, per-operation probabilistic strategies). The file
//! is re-read when it changes; a file that fails to parse is reported and
//! the previous strategies stay in force.
//!
//! Served over HTTP as Jaeger's agent and collector serve it:
//! `GET /sampling?service=` (proto-JSON `SamplingStrategyResponse`), the
//! legacy `GET /?service=` (enums as numbers), and `GET /api/sampling?service=`
//! on the collector's HTTP port.
//!
//! The gRPC `jaeger.api_v2.SamplingManager` answers the same strategies
//! ([`SamplingGrpc`]).
//!
//! With adaptive sampling on ([`adaptive`]), services without an entry in
//! the file get per-operation probabilities recomputed from the observed
//! throughput ([`AdaptiveStrategies`]).

pub mod adaptive;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use parking_lot::RwLock;
use serde::Deserialize;
use serde_json::{Value, json};

/// One strategy: probabilistic (a probability) or rate limiting (traces per
/// second).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Strategy {
    #[serde(rename = "type")]
    pub kind: StrategyKind,
    pub param: f64,
    #[serde(default)]
    pub operation_strategies: Vec<OperationStrategy>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StrategyKind {
    Probabilistic,
    Ratelimiting,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationStrategy {
    pub operation: String,
    #[serde(rename = "type")]
    pub kind: StrategyKind,
    pub param: f64,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceStrategy {
    pub service: String,
    #[serde(rename = "type")]
    pub kind: StrategyKind,
    pub param: f64,
    #[serde(default)]
    pub operation_strategies: Vec<OperationStrategy>,
}

/// The strategies file.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Strategies {
    #[serde(default)]
    pub service_strategies: Vec<ServiceStrategy>,
    #[serde(default = "Strategies::sample_everything")]
    pub default_strategy: Strategy,
}

impl Default for Strategies {
    /// With no file, every trace is sampled: what an all-in-one
    /// development setup expects. Production should configure a file.
    fn default() -> Self {
        Strategies {
            service_strategies: Vec::new(),
            default_strategy: Strategies::sample_everything(),
        }
    }
}

/// Why a strategies file was refused.
#[derive(Debug, thiserror::Error)]
pub enum StrategiesError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a valid strategies file: {message}")]
    Invalid { path: String, message: String },
}

impl Strategies {
    fn sample_everything() -> Strategy {
        Strategy {
            kind: StrategyKind::Probabilistic,
            param: 1.0,
            operation_strategies: Vec::new(),
        }
    }

    /// Parses and checks a strategies document.
    pub fn parse(text: &str, path: &str) -> Result<Strategies, StrategiesError> {
        let s: Strategies = serde_json::from_str(text).map_err(|e| StrategiesError::Invalid {
            path: path.into(),
            message: e.to_string(),
        })?;
        let check = |what: String, kind: StrategyKind, p: f64| match kind {
            StrategyKind::Probabilistic if !(0.0..=1.0).contains(&p) => {
                Err(StrategiesError::Invalid {
                    path: path.into(),
                    message: format!("{what}: probabilistic param {p} is not within [0, 1]"),
                })
            }
            StrategyKind::Ratelimiting if !(p >= 0.0 && p.is_finite()) => {
                Err(StrategiesError::Invalid {
                    path: path.into(),
                    message: format!(
                        "{what}: ratelimiting param {p} must be a non-negative number"
                    ),
                })
            }
            _ => Ok(()),
        };
        check(
            "default_strategy".into(),
            s.default_strategy.kind,
            s.default_strategy.param,
        )?;
        for o in &s.default_strategy.operation_strategies {
            check(
                format!("default operation {:?}", o.operation),
                o.kind,
                o.param,
            )?;
        }
        for ss in &s.service_strategies {
            check(format!("service {:?}", ss.service), ss.kind, ss.param)?;
            for o in &ss.operation_strategies {
                check(
                    format!("service {:?} operation {:?}", ss.service, o.operation),
                    o.kind,
                    o.param,
                )?;
            }
        }
        Ok(s)
    }

    pub fn load(path: &Path) -> Result<Strategies, StrategiesError> {
        let text = std::fs::read_to_string(path).map_err(|e| StrategiesError::Read {
            path: path.display().to_string(),
            source: e,
        })?;
        Strategies::parse(&text, &path.display().to_string())
    }

    /// The `SamplingStrategyResponse` for a service, as proto-JSON (enum
    /// names) or, for the legacy endpoint, with enums as numbers.
    pub fn response(&self, service: &str, numeric_enums: bool) -> Value {
        let found = self
            .service_strategies
            .iter()
            .find(|s| s.service == service);
        let (kind, param, own_ops) = match found {
            Some(s) => (s.kind, s.param, &s.operation_strategies),
            None => (
                self.default_strategy.kind,
                self.default_strategy.param,
                &self.default_strategy.operation_strategies,
            ),
        };
        let enum_value = |k: StrategyKind| match (k, numeric_enums) {
            (StrategyKind::Probabilistic, false) => json!("PROBABILISTIC"),
            (StrategyKind::Ratelimiting, false) => json!("RATE_LIMITING"),
            (StrategyKind::Probabilistic, true) => json!(0),
            (StrategyKind::Ratelimiting, true) => json!(1),
        };
        let mut out = json!({ "strategyType": enum_value(kind) });
        match kind {
            StrategyKind::Probabilistic => {
                out["probabilisticSampling"] = json!({ "samplingRate": param })
            }
            StrategyKind::Ratelimiting => {
                out["rateLimitingSampling"] = json!({ "maxTracesPerSecond": param.round() as i64 })
            }
        }
        // Per-operation strategies: the service's own, plus the default's
        // for operations the service does not list. Only probabilistic
        // operation strategies exist in the protocol.
        let mut ops: Vec<&OperationStrategy> = own_ops.iter().collect();
        if found.is_some() {
            for o in &self.default_strategy.operation_strategies {
                if !ops.iter().any(|x| x.operation == o.operation) {
                    ops.push(o);
                }
            }
        }
        let per_op: Vec<Value> = ops
            .iter()
            .filter(|o| o.kind == StrategyKind::Probabilistic)
            .map(|o| json!({"operation": o.operation, "probabilisticSampling": {"samplingRate": o.param}}))
            .collect();
        if !per_op.is_empty() {
            let default_probability = match kind {
                StrategyKind::Probabilistic => param,
                StrategyKind::Ratelimiting => match self.default_strategy.kind {
                    StrategyKind::Probabilistic => self.default_strategy.param,
                    StrategyKind::Ratelimiting => 0.001,
                },
            };
            out["operationSampling"] = json!({
                "defaultSamplingProbability": default_probability,
                "defaultLowerBoundTracesPerSecond": 0.0,
                "perOperationStrategies": per_op,
            });
        }
        out
    }
}

/// Strategies shared with the HTTP handlers, replaced on reload.
#[derive(Clone, Default)]
pub struct StrategyStore {
    current: Arc<RwLock<Strategies>>,
}

impl StrategyStore {
    pub fn new(s: Strategies) -> Self {
        StrategyStore {
            current: Arc::new(RwLock::new(s)),
        }
    }

    pub fn get(&self) -> Strategies {
        self.current.read().clone()
    }

    pub fn set(&self, s: Strategies) {
        *self.current.write() = s;
    }

    /// Loads `path` now (an error here is fatal to start-up: the operator
    /// asked for this file) and then re-reads it whenever its modification
    /// time or size changes, checking every `interval`.
    pub fn watch(path: PathBuf, interval: Duration) -> Result<StrategyStore, StrategiesError> {
        fn stamp(p: &Path) -> Option<(SystemTime, u64)> {
            let m = std::fs::metadata(p).ok()?;
            Some((m.modified().ok()?, m.len()))
        }
        // Stamp before loading, so a change made while we load is seen.
        let mut last = stamp(&path);
        let store = StrategyStore::new(Strategies::load(&path)?);
        let s = store.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let now = stamp(&path);
                if now == last {
                    continue;
                }
                last = now;
                match Strategies::load(&path) {
                    Ok(new) => {
                        tracing::info!(path = %path.display(), services = new.service_strategies.len(), "reloaded sampling strategies");
                        s.set(new);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "keeping the previous sampling strategies")
                    }
                }
            }
        });
        Ok(store)
    }
}

fn service_param(q: Option<&str>) -> Option<String> {
    form_urlencoded::parse(q.unwrap_or("").as_bytes())
        .find(|(k, v)| k == "service" && !v.is_empty())
        .map(|(_, v)| v.into_owned())
}

/// Where the HTTP endpoints get strategies from: the local strategies
/// file, or (in the agent) a collector.
#[tonic::async_trait]
pub trait StrategyProvider: Send + Sync + 'static {
    /// The `SamplingStrategyResponse` for a service as proto-JSON (enum
    /// names).
    async fn strategy(&self, service: &str) -> Value;
}

#[tonic::async_trait]
impl StrategyProvider for StrategyStore {
    async fn strategy(&self, service: &str) -> Value {
        self.get().response(service, false)
    }
}

/// Enum names → numbers, for the legacy endpoint.
fn numeric(mut v: Value) -> Value {
    if let Some(t) = v.get_mut("strategyType") {
        *t = json!(if t == "RATE_LIMITING" { 1 } else { 0 });
    }
    v
}

async fn answer(p: &dyn StrategyProvider, q: Option<&str>, numeric_enums: bool) -> Response {
    match service_param(q) {
        Some(service) => {
            let v = p.strategy(&service).await;
            let v = if numeric_enums { numeric(v) } else { v };
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                v.to_string(),
            )
                .into_response()
        }
        None => (
            StatusCode::BAD_REQUEST,
            "'service' parameter must be provided, e.g. /sampling?service=checkout\n",
        )
            .into_response(),
    }
}

/// A shared [`StrategyProvider`].
pub type Provider = Arc<dyn StrategyProvider>;

async fn sampling(State(p): State<Provider>, RawQuery(q): RawQuery) -> Response {
    answer(p.as_ref(), q.as_deref(), false).await
}

async fn legacy(State(p): State<Provider>, RawQuery(q): RawQuery) -> Response {
    answer(p.as_ref(), q.as_deref(), true).await
}

/// The agent-style sampling port (5778): `/sampling` and the legacy `/`.
pub fn agent_router(provider: Provider) -> Router {
    Router::new()
        .route("/sampling", get(sampling))
        .route("/", get(legacy))
        .with_state(provider)
}

/// The collector's `GET /api/sampling`, merged into its HTTP port.
pub fn collector_router(provider: Provider) -> Router {
    Router::new()
        .route("/api/sampling", get(sampling))
        .with_state(provider)
}

/// Strategies fetched from a collector's `SamplingManager` (the agent's
/// proxy): answers are cached per service for `ttl`; when the collector
/// cannot be reached the last answer (however old) is served, or else the
/// local fallback.
pub struct RemoteStrategies {
    endpoint: String,
    ttl: Duration,
    fallback: StrategyStore,
    cache: parking_lot::Mutex<std::collections::HashMap<String, (std::time::Instant, Value)>>,
}

impl RemoteStrategies {
    pub fn new(endpoint: String, ttl: Duration, fallback: StrategyStore) -> Self {
        RemoteStrategies {
            endpoint,
            ttl,
            fallback,
            cache: Default::default(),
        }
    }

    async fn fetch(&self, service: &str) -> Result<Value, String> {
        use waymark_proto::jaeger::api_v2 as pb;
        let mut c = pb::sampling_manager_client::SamplingManagerClient::connect(format!(
            "http://{}",
            self.endpoint
        ))
        .await
        .map_err(|e| e.to_string())?;
        let r = c
            .get_sampling_strategy(pb::SamplingStrategyParameters {
                service_name: service.to_string(),
            })
            .await
            .map_err(|e| e.to_string())?
            .into_inner();
        Ok(from_proto(&r))
    }
}

#[tonic::async_trait]
impl StrategyProvider for RemoteStrategies {
    async fn strategy(&self, service: &str) -> Value {
        if let Some((at, v)) = self.cache.lock().get(service)
            && at.elapsed() < self.ttl
        {
            return v.clone();
        }
        match self.fetch(service).await {
            Ok(v) => {
                self.cache
                    .lock()
                    .insert(service.to_string(), (std::time::Instant::now(), v.clone()));
                v
            }
            Err(e) => {
                tracing::warn!(collector = %self.endpoint, error = %e, "sampling strategy not fetched; serving the last known or the local one");
                match self.cache.lock().get(service) {
                    Some((_, v)) => v.clone(),
                    None => self.fallback.get().response(service, false),
                }
            }
        }
    }
}

/// A proto `SamplingStrategyResponse` as proto-JSON (the inverse of
/// [`to_proto`]).
pub fn from_proto(r: &waymark_proto::jaeger::api_v2::SamplingStrategyResponse) -> Value {
    let mut v = json!({"strategyType": if r.strategy_type == 1 { "RATE_LIMITING" } else { "PROBABILISTIC" }});
    if let Some(p) = &r.probabilistic_sampling {
        v["probabilisticSampling"] = json!({"samplingRate": p.sampling_rate});
    }
    if let Some(rl) = &r.rate_limiting_sampling {
        v["rateLimitingSampling"] = json!({"maxTracesPerSecond": rl.max_traces_per_second});
    }
    if let Some(o) = &r.operation_sampling {
        v["operationSampling"] = json!({
            "defaultSamplingProbability": o.default_sampling_probability,
            "defaultLowerBoundTracesPerSecond": o.default_lower_bound_traces_per_second,
            "perOperationStrategies": o.per_operation_strategies.iter().map(|p| json!({
                "operation": p.operation,
                "probabilisticSampling": {"samplingRate": p.probabilistic_sampling.as_ref().map(|s| s.sampling_rate).unwrap_or(0.0)},
            })).collect::<Vec<_>>(),
        });
    }
    v
}

/// `jaeger.api_v2.SamplingManager` over gRPC (served on 14250), answering
/// what the HTTP endpoints answer.
pub struct SamplingGrpc {
    pub provider: Provider,
}

/// Strategies from the file for the services it lists, adaptive
/// probabilities for every other service.
pub struct AdaptiveStrategies {
    pub file: StrategyStore,
    pub adaptive: Arc<adaptive::Adaptive>,
}

#[tonic::async_trait]
impl StrategyProvider for AdaptiveStrategies {
    async fn strategy(&self, service: &str) -> Value {
        let file = self.file.get();
        if file.service_strategies.iter().any(|s| s.service == service) {
            file.response(service, false)
        } else {
            self.adaptive.response(service)
        }
    }
}

/// The proto form of a response built by [`Strategies::response`].
pub fn to_proto(v: &Value) -> waymark_proto::jaeger::api_v2::SamplingStrategyResponse {
    use waymark_proto::jaeger::api_v2 as pb;
    let prob = |v: &Value| pb::ProbabilisticSamplingStrategy {
        sampling_rate: v["samplingRate"].as_f64().unwrap_or(0.0),
    };
    pb::SamplingStrategyResponse {
        strategy_type: match v["strategyType"].as_str() {
            Some("RATE_LIMITING") => pb::SamplingStrategyType::RateLimiting as i32,
            _ => pb::SamplingStrategyType::Probabilistic as i32,
        },
        probabilistic_sampling: v.get("probabilisticSampling").map(prob),
        rate_limiting_sampling: v.get("rateLimitingSampling").map(|r| {
            pb::RateLimitingSamplingStrategy {
                max_traces_per_second: r["maxTracesPerSecond"].as_i64().unwrap_or(0) as i32,
            }
        }),
        operation_sampling: v.get("operationSampling").map(|o| {
            pb::PerOperationSamplingStrategies {
                default_sampling_probability: o["defaultSamplingProbability"]
                    .as_f64()
                    .unwrap_or(0.0),
                default_lower_bound_traces_per_second: o["defaultLowerBoundTracesPerSecond"]
                    .as_f64()
                    .unwrap_or(0.0),
                per_operation_strategies: o["perOperationStrategies"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| pb::OperationSamplingStrategy {
                        operation: p["operation"].as_str().unwrap_or_default().to_string(),
                        probabilistic_sampling: Some(prob(&p["probabilisticSampling"])),
                    })
                    .collect(),
                default_upper_bound_traces_per_second: 0.0,
            }
        }),
    }
}

#[tonic::async_trait]
impl waymark_proto::jaeger::api_v2::sampling_manager_server::SamplingManager for SamplingGrpc {
    async fn get_sampling_strategy(
        &self,
        request: tonic::Request<waymark_proto::jaeger::api_v2::SamplingStrategyParameters>,
    ) -> Result<
        tonic::Response<waymark_proto::jaeger::api_v2::SamplingStrategyResponse>,
        tonic::Status,
    > {
        let service = request.into_inner().service_name;
        if service.is_empty() {
            return Err(tonic::Status::invalid_argument(
                "serviceName must be provided",
            ));
        }
        Ok(tonic::Response::new(to_proto(
            &self.provider.strategy(&service).await,
        )))
    }
}

/// The sampling manager as gRPC routes, to serve beside the collector.
pub fn grpc_routes(provider: Provider) -> tonic::service::Routes {
    tonic::service::Routes::new(
        waymark_proto::jaeger::api_v2::sampling_manager_server::SamplingManagerServer::new(
            SamplingGrpc { provider },
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"{
      "service_strategies": [
        {"service": "foo", "type": "probabilistic", "param": 0.8,
         "operation_strategies": [{"operation": "op1", "type": "probabilistic", "param": 0.2},
                                  {"operation": "op2", "type": "ratelimiting", "param": 3}]},
        {"service": "bar", "type": "ratelimiting", "param": 5}
      ],
      "default_strategy": {"type": "probabilistic", "param": 0.5,
        "operation_strategies": [{"operation": "/health", "type": "probabilistic", "param": 0.0}]}
    }"#;

    #[test]
    fn responses_follow_jaeger() {
        let s = Strategies::parse(FILE, "t.json").unwrap();
        let foo = s.response("foo", false);
        assert_eq!(foo["strategyType"], "PROBABILISTIC");
        assert_eq!(foo["probabilisticSampling"]["samplingRate"], 0.8);
        let ops = &foo["operationSampling"];
        assert_eq!(ops["defaultSamplingProbability"], 0.8);
        let names: Vec<_> = ops["perOperationStrategies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["operation"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            vec!["op1", "/health"],
            "own ops, then the default's; no rate-limited ops"
        );
        let bar = s.response("bar", false);
        assert_eq!(bar["strategyType"], "RATE_LIMITING");
        assert_eq!(bar["rateLimitingSampling"]["maxTracesPerSecond"], 5);
        let other = s.response("other", true);
        assert_eq!(other["strategyType"], 0);
        assert_eq!(other["probabilisticSampling"]["samplingRate"], 0.5);
        assert_eq!(
            Strategies::default().response("x", false)["probabilisticSampling"]["samplingRate"],
            1.0
        );
    }

    #[test]
    fn proto_roundtrip() {
        let s = Strategies::parse(FILE, "t").unwrap();
        for svc in ["foo", "bar", "other"] {
            let v = s.response(svc, false);
            assert_eq!(from_proto(&to_proto(&v)), v, "{svc}");
        }
    }

    #[test]
    fn bad_files_are_refused_with_reasons() {
        let e = Strategies::parse(
            r#"{"default_strategy": {"type": "probabilistic", "param": 2}}"#,
            "f",
        )
        .unwrap_err();
        assert!(e.to_string().contains("not within [0, 1]"), "{e}");
        let e = Strategies::parse(
            r#"{"default_strategy": {"type": "sometimes", "param": 1}}"#,
            "f",
        )
        .unwrap_err();
        assert!(e.to_string().contains("sometimes"), "{e}");
        let e = Strategies::parse(r#"{"service_strategy": []}"#, "f").unwrap_err();
        assert!(e.to_string().contains("service_strategy"), "{e}");
    }

    #[tokio::test]
    async fn reloads_when_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        std::fs::write(
            &path,
            r#"{"default_strategy": {"type": "probabilistic", "param": 0.25}}"#,
        )
        .unwrap();
        let store = StrategyStore::watch(path.clone(), Duration::from_millis(20)).unwrap();
        assert_eq!(store.get().default_strategy.param, 0.25);
        std::fs::write(
            &path,
            r#"{"default_strategy": {"type": "ratelimiting", "param": 7}}"#,
        )
        .unwrap();
        let mut ok = false;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if store.get().default_strategy.kind == StrategyKind::Ratelimiting {
                ok = true;
                break;
            }
        }
        assert!(ok, "reloaded");
        std::fs::write(&path, "{ broken").unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            store.get().default_strategy.param,
            7.0,
            "a broken file keeps the previous strategies"
        );
    }

    #[tokio::test]
    async fn http_endpoints() {
        use tower::ServiceExt;
        let store = StrategyStore::new(Strategies::parse(FILE, "t").unwrap());
        let provider: Arc<dyn StrategyProvider> = Arc::new(store);
        let app = agent_router(provider.clone()).merge(collector_router(provider));
        for (uri, status, want) in [
            ("/sampling?service=bar", 200, "RATE_LIMITING"),
            ("/?service=bar", 200, "\"strategyType\":1"),
            ("/api/sampling?service=foo", 200, "PROBABILISTIC"),
            ("/sampling", 400, "'service'"),
        ] {
            let r = app
                .clone()
                .oneshot(
                    axum::http::Request::get(uri)
                        .body(axum::body::Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), status, "{uri}");
            let b = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
            assert!(
                String::from_utf8_lossy(&b).contains(want),
                "{uri}: {}",
                String::from_utf8_lossy(&b)
            );
        }
    }
}
