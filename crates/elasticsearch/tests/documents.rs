//! Span documents as Jaeger writes them (fixtures written by hand from
//! Jaeger's published mapping and documentation) decoded into the span
//! model field for field, and back.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::Value;
use waymark_elasticsearch::document::{NO_SERVICE_NAME, Tag};
use waymark_elasticsearch::{DependenciesDocument, ServiceDocument, SpanDocument, TagsAsFields};
use waymark_model::{
    AnyValue, Event, KeyValue, Link, Resource, SERVICE_NAME, Scope, Span, SpanId, SpanKind, Status,
    StatusCode, TraceId,
};

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn kv(k: &str, v: AnyValue) -> KeyValue {
    KeyValue::new(k, v)
}

fn s(v: &str) -> AnyValue {
    AnyValue::String(v.into())
}

fn ref_link(trace: &str, span: &str, ty: &str) -> Link {
    Link {
        trace_id: TraceId::from_hex(trace).unwrap(),
        span_id: SpanId::from_hex(span).unwrap(),
        attributes: vec![kv("opentracing.ref_type", s(ty))],
        ..Default::default()
    }
}

const T0_NS: u64 = 1_795_639_801_234_567_000;

#[test]
fn current_jaeger_document_decodes_field_for_field() {
    let doc: SpanDocument = serde_json::from_str(&fixture("span_current.json")).unwrap();
    let span = doc.to_span(&TagsAsFields::default()).unwrap();

    assert_eq!(
        span.trace_id,
        TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap()
    );
    assert_eq!(span.span_id, SpanId::from_hex("00f067aa0ba902b7").unwrap());
    assert_eq!(
        span.parent_span_id,
        Some(SpanId::from_hex("5b8aa5a2d2c872e8").unwrap())
    );
    assert_eq!(span.flags, 1);
    assert_eq!(span.name, "POST /api/orders");
    assert_eq!(span.kind, SpanKind::Server);
    assert_eq!(span.start_time_unix_nano, T0_NS);
    assert_eq!(span.end_time_unix_nano, T0_NS + 15_250_000);
    assert_eq!(
        span.status,
        Status {
            code: StatusCode::Error,
            message: "upstream unavailable".into()
        }
    );
    assert_eq!(span.trace_state, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
    assert_eq!(span.scope.name, "io.opentelemetry.http");
    assert_eq!(span.scope.version, "1.31.0");
    assert_eq!(
        span.attributes,
        vec![
            kv("http.request.method", s("POST")),
            kv("http.response.status_code", AnyValue::Int(503)),
            kv("retry.count", AnyValue::Int(-2)),
            kv("big.counter", AnyValue::Int(9_007_199_254_740_993)),
            kv("server.load", AnyValue::Double(0.875)),
            kv("temperature", AnyValue::Double(72.0)),
            kv("cache.hit", AnyValue::Bool(false)),
            kv(
                "request.digest",
                AnyValue::Bytes(vec![0, 0, 0x30, 0x39, 0xde, 0xad, 0xbe, 0xef])
            ),
        ]
    );
    // The parent's CHILD_OF reference is the parent; the others are links.
    assert_eq!(
        span.links,
        vec![
            ref_link(
                "4bf92f3577b34da6a3ce929d0e0e4736",
                "a3ce929d0e0e4736",
                "follows_from"
            ),
            ref_link("abcd", "ef01", "child_of"),
        ]
    );
    assert_eq!(
        span.events,
        vec![
            Event {
                time_unix_nano: 1_795_639_801_240_000_000,
                name: "exception".into(),
                attributes: vec![
                    kv("exception.type", s("UpstreamError")),
                    kv("exception.escaped", AnyValue::Bool(true)),
                    kv("attempt", AnyValue::Int(3)),
                    kv("backoff.seconds", AnyValue::Double(1.5)),
                    kv("payload", AnyValue::Bytes(vec![0xca, 0xfe])),
                ],
                dropped_attributes_count: 0,
            },
            Event {
                time_unix_nano: 1_795_639_801_249_000_000,
                name: String::new(),
                attributes: vec![kv("message", s("giving up"))],
                dropped_attributes_count: 0,
            },
        ]
    );
    assert_eq!(
        span.resource.attributes,
        vec![
            kv(SERVICE_NAME, s("orders")),
            kv("host.name", s("node-7")),
            kv("process.pid", AnyValue::Int(4242)),
            kv("telemetry.sdk.language", s("python")),
            kv("container.restarted", AnyValue::Bool(false)),
            kv("host.cpu.ghz", AnyValue::Double(2.4)),
        ]
    );
}

#[test]
fn current_jaeger_document_round_trips_to_the_same_json() {
    let text = fixture("span_current.json");
    let doc: SpanDocument = serde_json::from_str(&text).unwrap();
    let span = doc.to_span(&TagsAsFields::default()).unwrap();
    let again = SpanDocument::from_span(&span, &TagsAsFields::default());
    let original: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(serde_json::to_value(&again).unwrap(), original);
    assert_eq!(again, doc);
}

#[test]
fn older_jaeger_document_with_text_values_and_tag_fields() {
    let fields = TagsAsFields {
        keys: ["http.method", "span.kind", "peer.port", "hostname", "ip"]
            .into_iter()
            .map(String::from)
            .collect(),
        ..Default::default()
    };
    let doc: SpanDocument = serde_json::from_str(&fixture("span_legacy.json")).unwrap();
    let span = doc.to_span(&fields).unwrap();

    // A 64-bit trace id, left-padded; the parent from the first CHILD_OF.
    assert_eq!(
        span.trace_id,
        TraceId::from_hex("a3ce929d0e0e4736").unwrap()
    );
    assert_eq!(span.parent_span_id, Some(SpanId::from_hex("1").unwrap()));
    assert_eq!(
        span.links,
        vec![ref_link("a3ce929d0e0e4736", "3", "follows_from")]
    );
    assert_eq!(span.kind, SpanKind::Client);
    assert_eq!(span.status.code, StatusCode::Error);
    assert_eq!(span.duration_nanos(), 120_000);
    // Nested tags first, parsed by type, then the `tag` object's fields
    // with `@` back to `.`.
    assert_eq!(
        span.attributes,
        vec![
            kv("component", s("net/http")),
            kv("sampler.param", AnyValue::Bool(true)),
            kv("http.status_code", AnyValue::Int(500)),
            kv("sampler.ratio", AnyValue::Double(0.25)),
            kv("request.id", AnyValue::Bytes(vec![1, 2, 0xff])),
            kv("http.method", s("GET")),
            kv("peer.port", AnyValue::Int(8081)),
        ]
    );
    assert_eq!(span.events[0].name, "Searching for nearby drivers");
    assert_eq!(
        span.events[0].attributes,
        vec![kv("level", s("info")), kv("found", AnyValue::Int(10))]
    );
    assert_eq!(
        span.resource.attributes,
        vec![
            kv(SERVICE_NAME, s("frontend")),
            kv("jaeger.version", s("Go-2.30.0")),
            kv("client-uuid", s("4c6f1b2e9d8a7f3b")),
            kv("hostname", s("frontend-7d9f")),
            kv("ip", s("10.0.0.12")),
        ]
    );

    // Written again, it takes today's form (typed values, 32-digit ids,
    // parentSpanID), and reads back as the same span.
    let again = SpanDocument::from_span(&span, &fields);
    assert_eq!(again.trace_id, "0000000000000000a3ce929d0e0e4736");
    assert_eq!(again.parent_span_id, "0000000000000001");
    assert_eq!(
        again.tag.keys().collect::<Vec<_>>(),
        ["http@method", "peer@port", "span@kind"]
    );
    assert_eq!(again.to_span(&fields).unwrap(), span);
    insta::assert_json_snapshot!("legacy_rewritten", again);
}

/// What survives a trip through Jaeger's document: see the `document`
/// module's list of what Jaeger cannot carry.
fn representable(span: &Span) -> Span {
    let us = |ns: u64| ns / 1_000 * 1_000;
    let text = |v: &AnyValue| match v {
        AnyValue::Array(_) | AnyValue::KvList(_) => AnyValue::String(v.to_tag_string()),
        other => other.clone(),
    };
    let attrs = |kvs: &[KeyValue]| -> Vec<KeyValue> {
        kvs.iter()
            .map(|kv| KeyValue::new(kv.key.clone(), text(&kv.value)))
            .collect()
    };
    let start = us(span.start_time_unix_nano);
    Span {
        start_time_unix_nano: start,
        end_time_unix_nano: start + us(span.duration_nanos()),
        attributes: attrs(&span.attributes),
        dropped_attributes_count: 0,
        events: span
            .events
            .iter()
            .map(|e| Event {
                time_unix_nano: us(e.time_unix_nano),
                attributes: attrs(&e.attributes),
                dropped_attributes_count: 0,
                ..e.clone()
            })
            .collect(),
        dropped_events_count: 0,
        links: span
            .links
            .iter()
            .map(|l| ref_link(&l.trace_id.to_hex(), &l.span_id.to_hex(), "follows_from"))
            .collect(),
        dropped_links_count: 0,
        resource: Arc::new(Resource {
            attributes: attrs(&span.resource.attributes),
            dropped_attributes_count: 0,
        }),
        scope: Arc::new(Scope {
            name: span.scope.name.clone(),
            version: span.scope.version.clone(),
            ..Default::default()
        }),
        ..span.clone()
    }
}

#[test]
fn model_round_trips_every_field_jaeger_can_carry() {
    for span in waymark_testkit::fixture_trace(T0_NS + 789) {
        let doc = SpanDocument::from_span(&span, &TagsAsFields::default());
        // Through JSON, as it would be stored.
        let json = serde_json::to_string(&doc).unwrap();
        let doc: SpanDocument = serde_json::from_str(&json).unwrap();
        let back = doc.to_span(&TagsAsFields::default()).unwrap();
        assert_eq!(back, representable(&span), "span {}", span.name);
    }
}

#[test]
fn model_round_trips_with_all_tags_as_fields() {
    let fields = TagsAsFields {
        all: true,
        dot_replacement: "@".into(),
        keys: BTreeSet::new(),
    };
    for span in waymark_testkit::fixture_trace(T0_NS) {
        let doc = SpanDocument::from_span(&span, &fields);
        // Only binary tags stay nested.
        assert!(doc.tags.iter().all(|t| t.ty == "binary"), "{:?}", doc.tags);
        assert!(doc.tag.keys().all(|k| !k.contains('.')));
        let back = doc.to_span(&fields).unwrap();
        let want = representable(&span);
        // The flattened fields come back after the nested ones, in key
        // order; everything else is unchanged.
        let sorted = |mut v: Vec<KeyValue>| {
            v.sort_by(|a, b| a.key.cmp(&b.key));
            v
        };
        assert_eq!(
            sorted(back.attributes.clone()),
            sorted(want.attributes.clone())
        );
        assert_eq!(
            sorted(back.resource.attributes.clone()),
            sorted(want.resource.attributes.clone())
        );
        assert_eq!((back.kind, &back.status), (want.kind, &want.status));
        assert_eq!(back.trace_state, want.trace_state);
        assert_eq!(back.events, want.events);
        assert_eq!(back.links, want.links);
    }
}

#[test]
fn every_tag_type_both_ways() {
    let cases = [
        (
            AnyValue::String("x".into()),
            r#"{"key":"k","type":"string","value":"x"}"#,
        ),
        (
            AnyValue::Bool(true),
            r#"{"key":"k","type":"bool","value":true}"#,
        ),
        (
            AnyValue::Int(-42),
            r#"{"key":"k","type":"int64","value":-42}"#,
        ),
        (
            AnyValue::Int(i64::MAX),
            r#"{"key":"k","type":"int64","value":9223372036854775807}"#,
        ),
        (
            AnyValue::Double(2.5),
            r#"{"key":"k","type":"float64","value":2.5}"#,
        ),
        (
            AnyValue::Double(3.0),
            r#"{"key":"k","type":"float64","value":3}"#,
        ),
        (
            AnyValue::Double(f64::NAN),
            r#"{"key":"k","type":"float64","value":"NaN"}"#,
        ),
        (
            AnyValue::Bytes(vec![0, 1, 254]),
            r#"{"key":"k","type":"binary","value":"0001fe"}"#,
        ),
        (
            AnyValue::Empty,
            r#"{"key":"k","type":"string","value":null}"#,
        ),
    ];
    for (value, json) in cases {
        let tag = Tag::from_model(&kv("k", value.clone()));
        assert_eq!(serde_json::to_string(&tag).unwrap(), json);
        let back: Tag = serde_json::from_str(json).unwrap();
        match (&back.to_model().value, &value) {
            (AnyValue::Double(a), AnyValue::Double(b)) if b.is_nan() => assert!(a.is_nan()),
            (got, want) => assert_eq!(got, want, "{json}"),
        }
    }
    // Arrays and maps travel as JSON text in a string tag.
    let arr = AnyValue::Array(vec![AnyValue::Int(1), s("a")]);
    assert_eq!(
        serde_json::to_string(&Tag::from_model(&kv("k", arr))).unwrap(),
        r#"{"key":"k","type":"string","value":"[1,\"a\"]"}"#
    );
}

#[test]
fn resource_without_service_name() {
    let mut span = waymark_testkit::span(1, 2, None, "x", "op", T0_NS, 1_000);
    span.resource = Arc::new(Resource::default());
    let doc = SpanDocument::from_span(&span, &TagsAsFields::default());
    assert_eq!(doc.process.service_name, NO_SERVICE_NAME);
    assert_eq!(
        doc.to_span(&TagsAsFields::default()).unwrap().resource,
        span.resource
    );

    span.resource = Arc::new(Resource {
        attributes: vec![kv("host.name", s("h"))],
        dropped_attributes_count: 0,
    });
    let doc = SpanDocument::from_span(&span, &TagsAsFields::default());
    assert_eq!(doc.process.service_name, "");
    assert_eq!(
        doc.to_span(&TagsAsFields::default()).unwrap().resource,
        span.resource
    );
}

#[test]
fn null_lists_read_as_empty() {
    let doc: SpanDocument = serde_json::from_str(
        r#"{"traceID":"1","spanID":"2","operationName":"op","references":null,
            "startTime":5,"startTimeMillis":0,"duration":1,"tags":null,"logs":null,
            "process":{"serviceName":"svc","tags":null}}"#,
    )
    .unwrap();
    let span = doc.to_span(&TagsAsFields::default()).unwrap();
    assert!(span.attributes.is_empty() && span.links.is_empty() && span.events.is_empty());
    assert_eq!(span.parent_span_id, None);
    assert_eq!(span.service_name(), "svc");
}

#[test]
fn bad_ids_are_errors() {
    let doc: SpanDocument = serde_json::from_str(
        r#"{"traceID":"zz","spanID":"2","operationName":"op","startTime":5,"process":{"serviceName":"s"}}"#,
    )
    .unwrap();
    let err = doc.to_span(&TagsAsFields::default()).unwrap_err();
    assert!(err.to_string().starts_with("traceID:"), "{err}");
}

#[test]
fn service_document_and_its_id() {
    let doc: ServiceDocument = serde_json::from_str(&fixture("service.json")).unwrap();
    assert_eq!(doc.service_name, "orders");
    assert_eq!(doc.operation_name, "POST /api/orders");
    // 64-bit FNV-1a of "orders" + "POST /api/orders", computed apart.
    assert_eq!(doc.id(), "bfdfa0df57f68ba7");
    assert_eq!(
        serde_json::to_string(&doc).unwrap(),
        fixture("service.json").trim_end()
    );
    let span_doc: SpanDocument = serde_json::from_str(&fixture("span_current.json")).unwrap();
    assert_eq!(ServiceDocument::of(&span_doc), doc);
}

#[test]
fn dependencies_document() {
    let doc: DependenciesDocument = serde_json::from_str(&fixture("dependencies.json")).unwrap();
    let ts = doc.timestamp_nanos().unwrap();
    assert_eq!(ts, 1_795_564_800_000_000_000);
    let links = doc.links();
    assert_eq!(links.len(), 2);
    assert_eq!(
        (
            links[1].parent.as_str(),
            links[1].child.as_str(),
            links[1].call_count
        ),
        ("orders", "payments", 37)
    );
    let again = DependenciesDocument::new(ts, &links);
    assert_eq!(again, doc);
    assert_eq!(
        DependenciesDocument::new(ts + 1_500_000, &[]).timestamp,
        "2026-11-25T00:00:00.0015Z"
    );
}
