//! Test and benchmark support shared by every crate: a fixture trace that
//! uses every field of the span model, a generator of realistic traces (used
//! by `waymark tracegen` and the benchmark), and the storage conformance
//! suite that every [`Storage`] backend must pass unchanged, and a store
//! that fails on demand ([`faulty::FaultyStorage`]) for error-mapping tests.
//!
//! Nothing here is used by the server at run time except the generator.

pub mod conformance;
pub mod faulty;
pub mod generator;

use std::sync::Arc;

use waymark_model::*;

pub use generator::{GeneratorConfig, TraceGenerator};

/// A resource with typed attributes for `service`.
pub fn resource(service: &str) -> Arc<Resource> {
    Arc::new(Resource {
        attributes: vec![
            KeyValue::new(SERVICE_NAME, AnyValue::String(service.into())),
            KeyValue::new("host.name", AnyValue::String("node-1".into())),
            KeyValue::new("process.pid", AnyValue::Int(4242)),
        ],
        dropped_attributes_count: 0,
    })
}

/// A minimal span of `service` named `name`, started at `start` ns and
/// lasting `dur` ns.
pub fn span(
    trace: u128,
    id: u64,
    parent: Option<u64>,
    service: &str,
    name: &str,
    start: u64,
    dur: u64,
) -> Span {
    Span {
        trace_id: TraceId(trace.to_be_bytes()),
        span_id: SpanId(id.to_be_bytes()),
        parent_span_id: parent.map(|p| SpanId(p.to_be_bytes())),
        name: name.into(),
        kind: SpanKind::Internal,
        start_time_unix_nano: start,
        end_time_unix_nano: start + dur,
        resource: resource(service),
        scope: Arc::new(Scope {
            name: "waymark-testkit".into(),
            version: "1.0".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A two-service trace that uses every field of the model: every attribute
/// type (with an int64 outside ±2^53 and nested arrays and maps), events
/// with attributes, links, error status, trace state, flags, scope
/// attributes and dropped counts.
pub fn fixture_trace(start: u64) -> Vec<Span> {
    let trace = 0x0af7651916cd43dd8448eb211c80319c_u128;
    let mut root = span(
        trace,
        0xb7ad6b7169203331,
        None,
        "frontend",
        "GET /checkout",
        start,
        12_345_678,
    );
    root.kind = SpanKind::Server;
    root.trace_state = "vendor=abc".into();
    root.flags = 1;
    root.attributes = vec![
        KeyValue::new("http.method", AnyValue::String("GET".into())),
        KeyValue::new("http.status_code", AnyValue::Int(200)),
        KeyValue::new("big.int", AnyValue::Int(9_007_199_254_740_993)),
        KeyValue::new("ratio", AnyValue::Double(0.25)),
        KeyValue::new("cache.hit", AnyValue::Bool(true)),
        KeyValue::new("payload", AnyValue::Bytes(vec![0xde, 0xad, 0xbe, 0xef])),
        KeyValue::new(
            "tags",
            AnyValue::Array(vec![AnyValue::String("a".into()), AnyValue::Int(2)]),
        ),
        KeyValue::new(
            "nested",
            AnyValue::KvList(vec![KeyValue::new("inner", AnyValue::Bool(false))]),
        ),
    ];
    root.dropped_attributes_count = 1;
    root.events = vec![Event {
        time_unix_nano: start + 1_000_000,
        name: "cache miss".into(),
        attributes: vec![KeyValue::new("key", AnyValue::String("cart:7".into()))],
        dropped_attributes_count: 0,
    }];
    root.links = vec![Link {
        trace_id: TraceId(0x1111_u128.to_be_bytes()),
        span_id: SpanId(0x2222_u64.to_be_bytes()),
        trace_state: "k=v".into(),
        attributes: vec![KeyValue::new(
            "link.kind",
            AnyValue::String("follows".into()),
        )],
        dropped_attributes_count: 0,
        flags: 1,
    }];
    root.scope = Arc::new(Scope {
        name: "io.waymark.fixture".into(),
        version: "2.3.4".into(),
        attributes: vec![KeyValue::new("scope.attr", AnyValue::String("x".into()))],
        dropped_attributes_count: 0,
    });

    let mut child = span(
        trace,
        0x00f067aa0ba902b7,
        Some(0xb7ad6b7169203331),
        "payment",
        "charge",
        start + 2_000_000,
        8_000_000,
    );
    child.kind = SpanKind::Client;
    child.status = Status {
        code: StatusCode::Error,
        message: "card declined".into(),
    };
    child.attributes = vec![KeyValue::new("payment.amount", AnyValue::Double(12.5))];
    child.events = vec![Event {
        time_unix_nano: start + 9_000_000,
        name: "exception".into(),
        attributes: vec![
            KeyValue::new("exception.type", AnyValue::String("Declined".into())),
            KeyValue::new(
                "exception.message",
                AnyValue::String("card declined".into()),
            ),
        ],
        dropped_attributes_count: 0,
    }];
    child.dropped_events_count = 2;
    child.dropped_links_count = 3;
    vec![root, child]
}

pub use waymark_model::now_unix_nanos as now_ns;
