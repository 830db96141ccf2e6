//! A generator of realistic traces: a web shop whose request fans out over
//! several services, with typed attributes, events, errors and variable
//! depth. Deterministic for a given seed.

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use waymark_model::*;

/// Knobs of the generator.
#[derive(Clone, Debug)]
pub struct GeneratorConfig {
    pub seed: u64,
    /// Probability that a trace contains a failing span.
    pub error_rate: f64,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            seed: 1,
            error_rate: 0.05,
        }
    }
}

struct Service {
    resource: Arc<Resource>,
    scope: Arc<Scope>,
}

/// Produces traces one at a time.
pub struct TraceGenerator {
    rng: StdRng,
    cfg: GeneratorConfig,
    services: Vec<Service>,
}

const SERVICES: &[(&str, &str)] = &[
    ("frontend", "nodejs"),
    ("auth", "python"),
    ("catalog", "go"),
    ("cart", "java"),
    ("payment", "rust"),
    ("postgres", "native"),
];

const ROUTES: &[&str] = &["/checkout", "/cart", "/product/{id}", "/login", "/search"];

impl TraceGenerator {
    pub fn new(cfg: GeneratorConfig) -> Self {
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let services = SERVICES
            .iter()
            .map(|(name, lang)| Service {
                resource: Arc::new(Resource {
                    attributes: vec![
                        KeyValue::new(SERVICE_NAME, AnyValue::String((*name).into())),
                        KeyValue::new("service.version", AnyValue::String("1.4.2".into())),
                        KeyValue::new("telemetry.sdk.language", AnyValue::String((*lang).into())),
                        KeyValue::new(
                            "host.name",
                            AnyValue::String(format!("node-{}", rng.random_range(1..4))),
                        ),
                        KeyValue::new("process.pid", AnyValue::Int(rng.random_range(100..30000))),
                    ],
                    dropped_attributes_count: 0,
                }),
                scope: Arc::new(Scope {
                    name: format!("io.opentelemetry.{lang}"),
                    version: "1.30.0".into(),
                    ..Default::default()
                }),
            })
            .collect();
        TraceGenerator { rng, cfg, services }
    }

    fn ids(&mut self) -> (TraceId, SpanId) {
        let mut t = [0u8; 16];
        self.rng.fill(&mut t);
        t[0] |= 1;
        (TraceId(t), self.span_id())
    }

    fn span_id(&mut self) -> SpanId {
        let mut s = [0u8; 8];
        self.rng.fill(&mut s);
        s[0] |= 1;
        SpanId(s)
    }

    #[allow(clippy::too_many_arguments)]
    fn make(
        &mut self,
        trace_id: TraceId,
        span_id: SpanId,
        parent: Option<SpanId>,
        svc: usize,
        name: &str,
        kind: SpanKind,
        start: u64,
        dur: u64,
        attributes: Vec<KeyValue>,
    ) -> Span {
        Span {
            trace_id,
            span_id,
            parent_span_id: parent,
            flags: 1,
            name: name.to_string(),
            kind,
            start_time_unix_nano: start,
            end_time_unix_nano: start + dur,
            attributes,
            resource: self.services[svc].resource.clone(),
            scope: self.services[svc].scope.clone(),
            ..Default::default()
        }
    }

    /// One trace whose root starts at `start_ns`; 6 to 14 spans.
    pub fn trace(&mut self, start_ns: u64) -> Vec<Span> {
        let (trace_id, root_id) = self.ids();
        let route = ROUTES[self.rng.random_range(0..ROUTES.len())];
        let failing = self.rng.random_bool(self.cfg.error_rate);
        let total = self.rng.random_range(5_000_000..80_000_000u64);
        let mut spans = Vec::new();
        let status = if failing { 500 } else { 200 };
        let client_addr = format!(
            "10.0.{}.{}",
            self.rng.random_range(0..8),
            self.rng.random_range(1..255)
        );
        let mut root = self.make(
            trace_id,
            root_id,
            None,
            0,
            &format!("GET {route}"),
            SpanKind::Server,
            start_ns,
            total,
            vec![
                KeyValue::new("http.request.method", AnyValue::String("GET".into())),
                KeyValue::new("http.route", AnyValue::String(route.into())),
                KeyValue::new("http.response.status_code", AnyValue::Int(status)),
                KeyValue::new(
                    "user_agent.original",
                    AnyValue::String("Mozilla/5.0".into()),
                ),
                KeyValue::new("client.address", AnyValue::String(client_addr)),
            ],
        );
        if failing {
            root.status = Status {
                code: StatusCode::Error,
                message: "downstream failure".into(),
            };
        }
        let calls = self.rng.random_range(2..=4usize);
        let mut t = start_ns + 200_000;
        let slot = total / (calls as u64 + 1);
        for c in 0..calls {
            let svc = 1 + (c + self.rng.random_range(0..4)) % 4;
            let svc_name = SERVICES[svc].0;
            let op = match svc {
                1 => "Authenticate",
                2 => "ListProducts",
                3 => "GetCart",
                _ => "Charge",
            };
            let client_id = self.span_id();
            let server_id = self.span_id();
            let dur = self.rng.random_range(slot / 4..slot.max(2));
            let client = self.make(
                trace_id,
                client_id,
                Some(root_id),
                0,
                &format!("{svc_name}/{op}"),
                SpanKind::Client,
                t,
                dur,
                vec![
                    KeyValue::new("rpc.system", AnyValue::String("grpc".into())),
                    KeyValue::new("rpc.service", AnyValue::String(svc_name.into())),
                    KeyValue::new("server.port", AnyValue::Int(50051)),
                ],
            );
            let mut server = self.make(
                trace_id,
                server_id,
                Some(client_id),
                svc,
                op,
                SpanKind::Server,
                t + 100_000,
                dur.saturating_sub(200_000).max(1),
                vec![
                    KeyValue::new("rpc.system", AnyValue::String("grpc".into())),
                    KeyValue::new(
                        "rpc.grpc.status_code",
                        AnyValue::Int(if failing && svc == 4 { 13 } else { 0 }),
                    ),
                ],
            );
            if failing && c == calls - 1 {
                server.status = Status {
                    code: StatusCode::Error,
                    message: "upstream connect error".into(),
                };
                server.events.push(Event {
                    time_unix_nano: t + dur / 2,
                    name: "exception".into(),
                    attributes: vec![
                        KeyValue::new("exception.type", AnyValue::String("ConnectionError".into())),
                        KeyValue::new(
                            "exception.message",
                            AnyValue::String("upstream connect error".into()),
                        ),
                    ],
                    dropped_attributes_count: 0,
                });
            }
            spans.push(client);
            if svc == 2 || svc == 3 {
                let db_id = self.span_id();
                let rows = self.rng.random_range(0..200);
                let mut db = self.make(
                    trace_id,
                    db_id,
                    Some(server_id),
                    svc,
                    "SELECT",
                    SpanKind::Client,
                    t + 300_000,
                    dur / 3 + 1,
                    vec![
                        KeyValue::new("db.system", AnyValue::String("postgresql".into())),
                        KeyValue::new(
                            "db.statement",
                            AnyValue::String(
                                "SELECT id, name, price FROM products WHERE category = $1".into(),
                            ),
                        ),
                        KeyValue::new("db.rows", AnyValue::Int(rows)),
                    ],
                );
                if rows > 150 {
                    db.events.push(Event {
                        time_unix_nano: t + 400_000,
                        name: "slow query".into(),
                        attributes: vec![KeyValue::new("db.rows", AnyValue::Int(rows))],
                        dropped_attributes_count: 0,
                    });
                }
                spans.push(db);
            }
            spans.push(server);
            t += slot;
        }
        spans.push(root);
        spans
    }
}
