//! `_bulk` bodies to the byte, and the documented per-item and whole-request
//! failures of `_bulk` responses.

use std::sync::Arc;

use waymark_elasticsearch::bulk::span_document_id;
use waymark_elasticsearch::{
    BulkBody, BulkError, BulkResponse, IndexConfig, IndexKind, ItemOutcome, OpType,
    ServiceDocument, SpanDocument, TagsAsFields,
};
use waymark_model::{
    AnyValue, Event, KeyValue, Resource, SERVICE_NAME, Span, SpanId, SpanKind, Status, StatusCode,
    TraceId,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/bulk/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn resource(attrs: Vec<KeyValue>) -> Arc<Resource> {
    Arc::new(Resource {
        attributes: attrs,
        dropped_attributes_count: 0,
    })
}

fn two_spans() -> Vec<Span> {
    let trace = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
    let root_id = SpanId::from_hex("00f067aa0ba902b7").unwrap();
    let t0 = 1_795_639_801_234_567_000;
    let root = Span {
        trace_id: trace,
        span_id: root_id,
        name: "GET /".into(),
        kind: SpanKind::Server,
        start_time_unix_nano: t0,
        end_time_unix_nano: t0 + 1_500_000,
        attributes: vec![KeyValue::new("http.status_code", AnyValue::Int(200))],
        resource: resource(vec![
            KeyValue::new(SERVICE_NAME, AnyValue::String("frontend".into())),
            KeyValue::new("host.name", AnyValue::String("node-7".into())),
        ]),
        ..Default::default()
    };
    let child = Span {
        trace_id: trace,
        span_id: SpanId::from_hex("5b8aa5a2d2c872e8").unwrap(),
        parent_span_id: Some(root_id),
        name: "SELECT".into(),
        kind: SpanKind::Client,
        start_time_unix_nano: t0 + 100_000,
        end_time_unix_nano: t0 + 900_000,
        status: Status {
            code: StatusCode::Ok,
            message: String::new(),
        },
        attributes: vec![KeyValue::new(
            "db.system",
            AnyValue::String("postgresql".into()),
        )],
        events: vec![Event {
            time_unix_nano: t0 + 200_000,
            name: "query".into(),
            attributes: vec![KeyValue::new("rows", AnyValue::Int(3))],
            dropped_attributes_count: 0,
        }],
        resource: resource(vec![KeyValue::new(
            SERVICE_NAME,
            AnyValue::String("payments".into()),
        )]),
        ..Default::default()
    };
    vec![root, child]
}

#[test]
fn bulk_body_for_two_spans_byte_for_byte() {
    let indices = IndexConfig::default();
    let mut body = BulkBody::new();
    for span in two_spans() {
        let doc = SpanDocument::from_span(&span, &TagsAsFields::default());
        let encoded = serde_json::to_vec(&doc).unwrap();
        let index = indices.write_target(IndexKind::Span, span.start_time_unix_nano);
        let id = span_document_id(&doc, &encoded);
        body.push_raw(OpType::Index, &index, Some(&id), &encoded);
    }
    assert_eq!(body.len(), 2);
    // The expected file was written by hand, its `_id` hashes computed
    // apart from this code.
    let want = fixture("two_spans.ndjson");
    assert_eq!(
        String::from_utf8_lossy(body.as_bytes()),
        String::from_utf8_lossy(&want)
    );
    assert_eq!(body.size(), want.len());
}

#[test]
fn action_lines() {
    let mut body = BulkBody::new();
    let doc = ServiceDocument {
        service_name: "a\"b".into(),
        operation_name: "op".into(),
    };
    body.push(OpType::Create, "jaeger-service-write", None, &doc)
        .unwrap();
    assert_eq!(
        String::from_utf8(body.into_bytes()).unwrap(),
        "{\"create\":{\"_index\":\"jaeger-service-write\"}}\n\
         {\"serviceName\":\"a\\\"b\",\"operationName\":\"op\"}\n"
    );
}

#[test]
fn item_rejected_with_429_is_retryable() {
    let r = BulkResponse::parse(200, &fixture("item_429.json"), 2).unwrap();
    assert_eq!(r.took_ms, 30);
    assert_eq!(r.items[0], ItemOutcome::Success);
    let ItemOutcome::Retryable(e) = &r.items[1] else {
        panic!("{:?}", r.items[1]);
    };
    assert_eq!(e.status, 429);
    assert_eq!(e.error_type, "es_rejected_execution_exception");
    assert!(
        e.reason
            .starts_with("rejected execution of coordinating operation")
    );
    assert_eq!(e.index, "jaeger-span-2026-11-25");
    assert_eq!(r.retryable(), [1]);
}

#[test]
fn mapping_error_is_permanent_with_its_cause() {
    let r = BulkResponse::parse(200, &fixture("item_mapping_error.json"), 1).unwrap();
    let ItemOutcome::Permanent(e) = &r.items[0] else {
        panic!("{:?}", r.items[0]);
    };
    assert_eq!(
        (e.status, e.error_type.as_str()),
        (400, "mapper_parsing_exception")
    );
    assert!(
        e.reason.ends_with(
            "(caused by illegal_argument_exception: failed to parse date field [yesterday] with format [epoch_millis])"
        ),
        "{}",
        e.reason
    );
    assert!(r.retryable().is_empty());
}

#[test]
fn version_conflict_is_already_written() {
    let r = BulkResponse::parse(200, &fixture("item_version_conflict.json"), 1).unwrap();
    let ItemOutcome::Conflict(e) = &r.items[0] else {
        panic!("{:?}", r.items[0]);
    };
    assert_eq!(e.status, 409);
    assert!(e.reason.contains("document already exists"));
    assert!(r.retryable().is_empty());
}

#[test]
fn mixed_response_in_request_order() {
    let r = BulkResponse::parse(200, &fixture("mixed.json"), 8).unwrap();
    let kinds: Vec<(&str, u16, &str)> = r
        .items
        .iter()
        .map(|o| {
            let kind = match o {
                ItemOutcome::Success => "ok",
                ItemOutcome::Conflict(_) => "conflict",
                ItemOutcome::Retryable(_) => "retry",
                ItemOutcome::Permanent(_) => "permanent",
            };
            let (status, ty) = o
                .error()
                .map(|e| (e.status, e.error_type.as_str()))
                .unwrap_or((0, ""));
            (kind, status, ty)
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("ok", 0, ""),
            ("ok", 0, ""),
            ("retry", 429, "circuit_breaking_exception"),
            ("retry", 503, "unavailable_shards_exception"),
            ("permanent", 404, "index_not_found_exception"),
            ("permanent", 400, "document_parsing_exception"),
            ("conflict", 409, "version_conflict_engine_exception"),
            ("retry", 429, "cluster_block_exception"),
        ]
    );
    assert_eq!(r.retryable(), [2, 3, 7]);
    assert_eq!(r.counts(), (2, 1, 3, 2));
}

#[test]
fn whole_request_failures() {
    match BulkResponse::parse(400, &fixture("request_400.json"), 2) {
        Err(BulkError::Request {
            status: 400,
            retryable: false,
            error_type,
            reason,
        }) => {
            assert_eq!(error_type, "illegal_argument_exception");
            assert!(reason.contains("terminated by a newline"));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        BulkResponse::parse(429, &fixture("request_429.json"), 2),
        Err(BulkError::Request {
            status: 429,
            retryable: true,
            ..
        })
    ));
    // A proxy's HTML error page.
    assert!(matches!(
        BulkResponse::parse(502, b"<html>Bad Gateway</html>", 2),
        Err(BulkError::Request {
            status: 502,
            retryable: true,
            ..
        })
    ));
}

#[test]
fn malformed_responses() {
    assert!(matches!(
        BulkResponse::parse(200, &fixture("item_429.json"), 3),
        Err(BulkError::ItemCount { sent: 3, got: 2 })
    ));
    assert!(matches!(
        BulkResponse::parse(200, b"not json", 1),
        Err(BulkError::Malformed(_))
    ));
    assert!(matches!(
        BulkResponse::parse(200, br#"{"items":[{}]}"#, 1),
        Err(BulkError::Malformed(_))
    ));
}
