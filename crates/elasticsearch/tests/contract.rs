//! Contract tests of the HTTP side against a recording stand-in for a
//! cluster: every request Waymark sends is captured (method, path, headers,
//! body) and answered with a response written from Elasticsearch's
//! documented REST API. No real cluster is involved here; see `live.rs`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use serde_json::{Value, json};
use waymark_elasticsearch::{ClientConfig, EsConfig, EsStorage, IndexConfig};
use waymark_model::{AnyValue, KeyValue, Resource, Span, SpanId, SpanKind, TraceId};
use waymark_storage::{Storage, StorageErrorKind, TraceQuery};

#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Seen {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    fn ndjson(&self) -> Vec<Value> {
        String::from_utf8(self.body.clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

type Responder = Box<dyn FnMut(&Seen) -> Option<(u16, Value)> + Send>;

/// The stand-in: answers `GET /` with a version, template PUTs with
/// `acknowledged`, and everything else from the queued responders (the
/// first that returns an answer), else 404.
#[derive(Clone)]
struct Mock {
    seen: Arc<Mutex<Vec<Seen>>>,
    responders: Arc<Mutex<VecDeque<Responder>>>,
    root: Arc<Mutex<Value>>,
}

fn es8_root() -> Value {
    json!({"name": "node-1", "cluster_name": "test", "version": {"number": "8.15.2", "build_flavor": "default"}, "tagline": "You Know, for Search"})
}

impl Mock {
    async fn start(root: Value) -> (Mock, String) {
        let mock = Mock {
            seen: Default::default(),
            responders: Default::default(),
            root: Arc::new(Mutex::new(root)),
        };
        let app = Router::new().fallback(handle).with_state(mock.clone());
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        (mock, url)
    }

    fn respond(&self, f: impl FnMut(&Seen) -> Option<(u16, Value)> + Send + 'static) {
        self.responders.lock().push_back(Box::new(f));
    }

    fn requests(&self, method: &str, path_prefix: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .iter()
            .filter(|s| s.method == method && s.path.starts_with(path_prefix))
            .cloned()
            .collect()
    }
}

async fn handle(
    State(m): State<Mock>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let seen = Seen {
        method: method.to_string(),
        path: uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers,
        body: body.to_vec(),
    };
    m.seen.lock().push(seen.clone());
    if seen.method == "GET" && seen.path == "/" {
        return axum::Json(m.root.lock().clone()).into_response();
    }
    if seen.method == "PUT"
        && (seen.path.starts_with("/_index_template/") || seen.path.starts_with("/_template/"))
    {
        return axum::Json(json!({"acknowledged": true})).into_response();
    }
    let mut rs = m.responders.lock();
    for i in 0..rs.len() {
        if let Some((status, body)) = (rs[i])(&seen) {
            return (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response();
        }
    }
    drop(rs);
    (
        StatusCode::NOT_FOUND,
        axum::Json(
            json!({"error": {"type": "unexpected_request", "reason": seen.path}, "status": 404}),
        ),
    )
        .into_response()
}

fn cfg(url: &str) -> EsConfig {
    EsConfig {
        client: ClientConfig {
            urls: vec![url.to_string()],
            timeout: Duration::from_secs(5),
            ..ClientConfig::default()
        },
        retry_backoff: Duration::from_millis(1),
        ..EsConfig::default()
    }
}

const T0: u64 = 1_764_000_000_000_000_000; // 2025-11-24T16:00:00Z

fn span(trace: u128, id: u64, service: &str, name: &str) -> Span {
    Span {
        trace_id: TraceId(trace.to_be_bytes()),
        span_id: SpanId(id.to_be_bytes()),
        name: name.into(),
        kind: SpanKind::Server,
        start_time_unix_nano: T0,
        end_time_unix_nano: T0 + 1_500_000,
        attributes: vec![KeyValue::new("http.method", AnyValue::String("GET".into()))],
        resource: Arc::new(Resource {
            attributes: vec![KeyValue::new(
                "service.name",
                AnyValue::String(service.into()),
            )],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A `_bulk` answer: every item created, except the statuses given by
/// position.
fn bulk_answer(items: usize, special: &[(usize, u16, &str)]) -> Value {
    let items: Vec<Value> = (0..items)
        .map(|i| match special.iter().find(|(n, _, _)| *n == i) {
            Some((_, status, ty)) => json!({"index": {"_index": "x", "_id": i.to_string(), "status": status,
                "error": {"type": ty, "reason": format!("{ty} for item {i}")}}}),
            None => json!({"index": {"_index": "x", "_id": i.to_string(), "status": 201, "result": "created"}}),
        })
        .collect();
    json!({"took": 3, "errors": !special.is_empty(), "items": items})
}

#[tokio::test]
async fn templates_follow_the_cluster_version() {
    for (root, path) in [
        (es8_root(), "/_index_template/jaeger-span"),
        (
            json!({"version": {"number": "7.17.24"}, "tagline": "You Know, for Search"}),
            "/_template/jaeger-span",
        ),
        (
            json!({"version": {"distribution": "opensearch", "number": "2.17.1"}, "tagline": "The OpenSearch Project: https://opensearch.org/"}),
            "/_template/jaeger-span",
        ),
    ] {
        let (mock, url) = Mock::start(root).await;
        EsStorage::open(cfg(&url)).await.unwrap();
        let puts = mock.requests("PUT", "/");
        assert_eq!(puts.len(), 3, "one template per kind");
        assert!(
            puts.iter().any(|p| p.path == path),
            "{path} in {:?}",
            puts.iter().map(|p| &p.path).collect::<Vec<_>>()
        );
        let span_t = puts.iter().find(|p| p.path == path).unwrap().json();
        let text = span_t.to_string();
        assert!(text.contains("jaeger-span-*"), "pattern: {text}");
        assert!(text.contains("\"nested\""), "nested tags: {text}");
    }
    // An unsupported version is refused with a clear message.
    let (_m, url) = Mock::start(json!({"version": {"number": "6.8.0"}})).await;
    let e = EsStorage::open(cfg(&url)).await.err().unwrap().to_string();
    assert!(e.contains("6.8.0") && e.contains("supported"), "{e}");
}

#[tokio::test]
async fn bulk_body_index_names_ids_and_service_dedup() {
    let (mock, url) = Mock::start(es8_root()).await;
    let store = EsStorage::open(EsConfig {
        indices: IndexConfig {
            prefix: "prod".into(),
            ..IndexConfig::default()
        },
        ..cfg(&url)
    })
    .await
    .unwrap();
    mock.respond(|s| (s.path == "/_bulk").then(|| (200, bulk_answer(s.ndjson().len() / 2, &[]))));
    store
        .write(vec![
            span(1, 1, "checkout", "GET /cart"),
            span(1, 2, "checkout", "GET /cart"),
        ])
        .await
        .unwrap();
    let bulks = mock.requests("POST", "/_bulk");
    assert_eq!(bulks.len(), 1);
    assert_eq!(bulks[0].headers["content-type"], "application/x-ndjson");
    let lines = bulks[0].ndjson();
    // Two span documents and one service document (the pair repeats).
    assert_eq!(lines.len(), 6, "{lines:#?}");
    assert_eq!(lines[0]["index"]["_index"], "prod-jaeger-span-2025-11-24");
    assert_eq!(lines[1]["traceID"], "00000000000000000000000000000001");
    assert_eq!(lines[1]["spanID"], "0000000000000001");
    assert_eq!(lines[1]["startTime"], T0 / 1000);
    assert_eq!(lines[1]["startTimeMillis"], T0 / 1_000_000);
    assert_eq!(lines[1]["duration"], 1500);
    assert_eq!(lines[1]["process"]["serviceName"], "checkout");
    let id = lines[0]["index"]["_id"].as_str().unwrap();
    assert!(
        id.starts_with("00000000000000000000000000000001_0000000000000001_"),
        "{id}"
    );
    assert_eq!(
        lines[2]["index"]["_index"],
        "prod-jaeger-service-2025-11-24"
    );
    assert_eq!(
        lines[3],
        json!({"serviceName": "checkout", "operationName": "GET /cart"})
    );
    assert_eq!(lines[4]["index"]["_index"], "prod-jaeger-span-2025-11-24");

    // The service document is not written again once acknowledged, and
    // writing the same span again gives the same _id (no duplicate).
    store
        .write(vec![span(1, 1, "checkout", "GET /cart")])
        .await
        .unwrap();
    let again = mock.requests("POST", "/_bulk")[1].ndjson();
    assert_eq!(again.len(), 2);
    assert_eq!(again[0]["index"]["_id"], lines[0]["index"]["_id"]);
    assert_eq!(store.stats().stored_spans, 3);
}

#[tokio::test]
async fn only_the_items_refused_for_now_are_sent_again() {
    let (mock, url) = Mock::start(es8_root()).await;
    let store = EsStorage::open(cfg(&url)).await.unwrap();
    let mut calls = 0;
    mock.respond(move |s| {
        if s.path != "/_bulk" {
            return None;
        }
        calls += 1;
        let n = s.ndjson().len() / 2;
        Some(match calls {
            // Item 2 (the second span) rejected: the write queue was full.
            1 => (
                200,
                bulk_answer(n, &[(2, 429, "es_rejected_execution_exception")]),
            ),
            _ => (200, bulk_answer(n, &[])),
        })
    });
    store
        .write(vec![
            span(7, 1, "a", "x"),
            span(7, 2, "a", "x"),
            span(7, 3, "a", "x"),
        ])
        .await
        .unwrap();
    let bulks = mock.requests("POST", "/_bulk");
    assert_eq!(bulks.len(), 2);
    let first = bulks[0].ndjson();
    let retry = bulks[1].ndjson();
    assert_eq!(first.len(), 8, "3 spans + 1 service document");
    assert_eq!(retry.len(), 2, "only the refused item: {retry:#?}");
    assert_eq!(retry[0], first[4], "same action line, same _id");
    assert_eq!(retry[1]["spanID"], "0000000000000002");
}

#[tokio::test]
async fn conflicts_count_as_written_and_mapping_errors_fail_with_the_reason() {
    let (mock, url) = Mock::start(es8_root()).await;
    let store = EsStorage::open(cfg(&url)).await.unwrap();
    mock.respond(|s| {
        (s.path == "/_bulk").then(|| {
            let n = s.ndjson().len() / 2;
            if s.ndjson()[1]["operationName"] == "bad" {
                (200, bulk_answer(n, &[(0, 400, "mapper_parsing_exception")]))
            } else {
                (
                    200,
                    bulk_answer(n, &[(0, 409, "version_conflict_engine_exception")]),
                )
            }
        })
    });
    store.write(vec![span(9, 1, "a", "fine")]).await.unwrap();
    let e = store.write(vec![span(9, 2, "a", "bad")]).await.unwrap_err();
    assert_eq!(e.kind, StorageErrorKind::Invalid);
    assert!(e.to_string().contains("mapper_parsing_exception"), "{e}");
    assert_eq!(
        mock.requests("POST", "/_bulk").len(),
        2,
        "a permanent error is not retried"
    );
}

#[tokio::test]
async fn a_cluster_that_keeps_pushing_back_fails_the_write_as_unavailable() {
    let (mock, url) = Mock::start(es8_root()).await;
    let store = EsStorage::open(EsConfig {
        max_retries: 3,
        ..cfg(&url)
    })
    .await
    .unwrap();
    mock.respond(|s| {
        (s.path == "/_bulk").then(|| {
            (429, json!({"error": {"type": "es_rejected_execution_exception", "reason": "rejected execution of coordinating operation"}, "status": 429}))
        })
    });
    let e = store.write(vec![span(3, 1, "a", "x")]).await.unwrap_err();
    assert_eq!(e.kind, StorageErrorKind::Unavailable, "{e}");
    assert!(e.to_string().contains("overloaded"), "{e}");
    assert_eq!(mock.requests("POST", "/_bulk").len(), 4, "1 + 3 retries");
}

fn hit(doc: Value) -> Value {
    json!({"_index": "jaeger-span-2025-11-24", "_id": "x", "_source": doc, "sort": [doc["startTime"], doc["spanID"]]})
}

fn jaeger_doc(trace: &str, span: &str, service: &str, op: &str, start_us: u64) -> Value {
    json!({"traceID": trace, "spanID": span, "flags": 1, "operationName": op, "references": [],
        "startTime": start_us, "startTimeMillis": start_us / 1000, "duration": 250,
        "tags": [{"key": "span.kind", "type": "string", "value": "server"}, {"key": "http.status_code", "type": "int64", "value": "500"}],
        "logs": [], "process": {"serviceName": service, "tags": []}})
}

#[tokio::test]
async fn search_asks_for_trace_ids_then_their_spans() {
    let (mock, url) = Mock::start(es8_root()).await;
    let store = EsStorage::open(cfg(&url)).await.unwrap();
    let trace = "0000000000000000000000000000abcd";
    let start_us = T0 / 1000;
    mock.respond(move |s| {
        if !s.path.contains("/_search") {
            return None;
        }
        let body = s.json();
        Some(if body.get("aggs").is_some() {
            (200, json!({"hits": {"hits": []}, "aggregations": {"traceIDs": {"buckets": [{"key": trace, "doc_count": 2, "startTime": {"value": start_us}}]}}}))
        } else {
            (200, json!({"hits": {"total": {"value": 2}, "hits": [
                hit(jaeger_doc(trace, "0000000000000001", "checkout", "GET /cart", start_us)),
                hit(jaeger_doc(trace, "0000000000000002", "payment", "charge", start_us + 10)),
            ]}}))
        })
    });
    let q = TraceQuery {
        service: Some("checkout".into()),
        tags: vec![("http.status_code".into(), "500".into())],
        duration_min: Some(100_000),
        ..TraceQuery::all(T0 - 3_600_000_000_000, T0 + 1_000_000_000, 20)
    };
    let traces = store.find_traces(&q).await.unwrap();
    assert_eq!(traces.len(), 1);
    assert_eq!(traces[0].spans.len(), 2);
    assert_eq!(traces[0].trace_id.to_hex(), trace);

    let searches = mock.requests("POST", "/");
    let agg = &searches[0];
    assert_eq!(
        agg.path,
        "/jaeger-span-2025-11-24/_search?ignore_unavailable=true&allow_no_indices=true"
    );
    let body = agg.json();
    assert_eq!(body["size"], 0);
    assert_eq!(body["aggs"]["traceIDs"]["terms"]["field"], "traceID");
    assert_eq!(body["aggs"]["traceIDs"]["terms"]["size"], 20);
    assert_eq!(
        body["aggs"]["traceIDs"]["terms"]["order"],
        json!({"startTime": "desc"})
    );
    assert_eq!(
        body["aggs"]["traceIDs"]["aggs"]["startTime"],
        json!({"max": {"field": "startTime"}})
    );
    let must = body["query"]["bool"]["must"].as_array().unwrap();
    assert!(
        must.contains(&json!({"term": {"process.serviceName": "checkout"}})),
        "{must:#?}"
    );
    assert!(
        must.contains(&json!({"range": {"duration": {"gte": 100}}})),
        "{must:#?}"
    );
    let tag = must
        .iter()
        .find(|c| c.to_string().contains("http.status_code"))
        .unwrap()
        .to_string();
    for path in ["\"tags\"", "\"process.tags\"", "\"logs.fields\""] {
        assert!(tag.contains(path), "nested {path} in {tag}");
    }
    assert!(
        tag.contains("tag.http@status_code"),
        "flattened field in {tag}"
    );

    let fetch = searches[1].json();
    let mut forms: Vec<String> =
        serde_json::from_value(fetch["query"]["terms"]["traceID"].clone()).unwrap();
    forms.sort();
    assert_eq!(
        forms,
        vec![trace.to_string(), "000000000000abcd".to_string()],
        "both stored forms"
    );
    assert_eq!(
        fetch["sort"],
        json!([{"startTime": "asc"}, {"spanID": "asc"}])
    );
    // The spans are read over the range widened by the clock-skew margin.
    assert!(
        searches[1].path.starts_with("/jaeger-span-2025-11-24"),
        "{}",
        searches[1].path
    );

    // The final check is ours: a trace the cluster offered that does not
    // match (service "other") is dropped.
    let q2 = TraceQuery {
        service: Some("other".into()),
        ..q
    };
    assert!(store.find_traces(&q2).await.unwrap().is_empty());
}

#[tokio::test]
async fn trace_by_id_asks_for_both_id_forms_and_a_missing_index_is_not_an_error() {
    let (mock, url) = Mock::start(es8_root()).await;
    let store = EsStorage::open(cfg(&url)).await.unwrap();
    // With ignore_unavailable the cluster answers missing indices with no hits.
    mock.respond(|s| {
        s.path
            .contains("/_search")
            .then(|| (200, json!({"hits": {"total": {"value": 0}, "hits": []}})))
    });
    let id = TraceId(0xabcdu128.to_be_bytes());
    assert!(store.get_trace(id).await.unwrap().is_none());
    let s = &mock.requests("POST", "/")[0];
    assert!(s.path.contains("ignore_unavailable=true"), "{}", s.path);
    let mut forms: Vec<String> =
        serde_json::from_value(s.json()["query"]["terms"]["traceID"].clone()).unwrap();
    forms.sort();
    assert_eq!(
        forms,
        vec!["0000000000000000000000000000abcd", "000000000000abcd"]
    );
    // 72 hours of daily indices, widened by the one-hour clock-skew margin
    // at both ends: the days from (now - 73 h) to (now + 1 h), which is
    // four of them, or five within an hour of midnight UTC.
    let indices = s.path.trim_start_matches('/').split('/').next().unwrap();
    let day = |secs: u64| secs / 86_400;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let want = day(now + 3600) - day(now - 73 * 3600) + 1;
    assert_eq!(indices.split(',').count() as u64, want, "{indices}");
}

#[tokio::test]
async fn errors_name_what_the_cluster_said() {
    let (mock, url) = Mock::start(es8_root()).await;
    let store = EsStorage::open(cfg(&url)).await.unwrap();
    mock.respond(|s| {
        s.path.contains("/_search").then(|| {
            (404, json!({"error": {"type": "index_not_found_exception", "reason": "no such index [jaeger-span-x]"}, "status": 404}))
        })
    });
    let e = store.services().await.unwrap_err().to_string();
    assert!(
        e.contains("404") && e.contains("index_not_found_exception"),
        "{e}"
    );
}

#[tokio::test]
async fn credentials_and_failover() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("password");
    std::fs::write(&pw, "s3cret\n").unwrap();
    let (mock, url) = Mock::start(es8_root()).await;
    // The first URL refuses connections: the client moves on.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = l.local_addr().unwrap();
        drop(l);
        format!("http://{a}")
    };
    let mut c = cfg(&url);
    c.client.urls = vec![dead, url.clone()];
    c.client.username = Some("elastic".into());
    c.client.password_file = Some(pw.clone());
    EsStorage::open(c).await.unwrap();
    let root = &mock.requests("GET", "/")[0];
    // base64("elastic:s3cret")
    assert_eq!(root.headers["authorization"], "Basic ZWxhc3RpYzpzM2NyZXQ=");

    let key = dir.path().join("api-key");
    std::fs::write(
        &key,
        "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==",
    )
    .unwrap();
    let mut c = cfg(&url);
    c.client.api_key_file = Some(key);
    EsStorage::open(c).await.unwrap();
    let root = mock.requests("GET", "/").pop().unwrap();
    assert_eq!(
        root.headers["authorization"],
        "ApiKey VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="
    );

    // Configuration mistakes are named.
    let mut c = cfg(&url);
    c.client.password_file = Some(dir.path().join("missing"));
    c.client.username = Some("elastic".into());
    let e = EsStorage::open(c).await.err().unwrap().to_string();
    assert!(e.contains("missing") && e.contains("password"), "{e}");
    let mut c = cfg(&url);
    c.client.ca_file = Some(pw);
    let e = EsStorage::open(c).await.err().unwrap().to_string();
    assert!(e.contains("CA file"), "{e}");
}

#[tokio::test]
async fn wrong_credentials_are_reported_as_such() {
    use axum::routing::get;
    let app = Router::new().route(
        "/",
        get(|| async {
            (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": {"type": "security_exception", "reason": "unable to authenticate user [elastic]"}, "status": 401})))
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let e = EsStorage::open(cfg(&url)).await.err().unwrap().to_string();
    assert!(
        e.contains("401") && e.contains("credentials") && e.contains("security_exception"),
        "{e}"
    );
}

#[tokio::test]
async fn rollover_init_rollover_and_lookback() {
    use waymark_elasticsearch::{EsClient, TemplateOptions, rollover};
    let (mock, url) = Mock::start(es8_root()).await;
    let client = EsClient::new(&cfg(&url).client).unwrap();
    let indices = IndexConfig {
        prefix: "prod".into(),
        ..IndexConfig::default()
    };
    // init: no write alias yet for spans; services have one already.
    mock.respond(|s| {
        (s.method == "HEAD" && s.path.starts_with("/_alias/")).then(|| {
            if s.path.contains("span") {
                (404, json!({}))
            } else {
                (200, json!({}))
            }
        })
    });
    mock.respond(|s| {
        (s.method == "PUT" && s.path == "/prod-jaeger-span-000001")
            .then(|| (200, json!({"acknowledged": true})))
    });
    let r = rollover::init(&client, &indices, &TemplateOptions::default())
        .await
        .unwrap();
    assert!(
        r.lines
            .iter()
            .any(|l| l.contains("prod-jaeger-service-write exists")),
        "{:?}",
        r.lines
    );
    let created = mock.requests("PUT", "/prod-jaeger-span-000001");
    assert_eq!(created.len(), 1);
    assert_eq!(
        created[0].json(),
        json!({"aliases": {"prod-jaeger-span-write": {"is_write_index": true}, "prod-jaeger-span-read": {}}})
    );
    let template = mock.requests("PUT", "/_index_template/prod-jaeger-span")[0]
        .json()
        .to_string();
    assert!(template.contains("prod-jaeger-span-*"), "{template}");

    // rollover: the span alias rolls, the service alias does not.
    mock.respond(|s| {
        (s.path.ends_with("/_rollover")).then(|| {
            if s.path.contains("span") {
                (200, json!({"acknowledged": true, "old_index": "prod-jaeger-span-000001", "new_index": "prod-jaeger-span-000002", "rolled_over": true, "dry_run": false, "conditions": {"[max_age: 1d]": true}}))
            } else {
                (200, json!({"acknowledged": false, "old_index": "prod-jaeger-service-000001", "new_index": "prod-jaeger-service-000002", "rolled_over": false, "dry_run": false, "conditions": {"[max_age: 1d]": false}}))
            }
        })
    });
    mock.respond(|s| (s.path == "/_aliases").then(|| (200, json!({"acknowledged": true}))));
    let r = rollover::rollover(&client, &indices, &json!({"max_age": "1d"}))
        .await
        .unwrap();
    assert_eq!(r.lines.len(), 2, "{:?}", r.lines);
    let ro = mock.requests("POST", "/prod-jaeger-span-write/_rollover");
    assert_eq!(ro[0].json(), json!({"conditions": {"max_age": "1d"}}));
    let aliases = mock.requests("POST", "/_aliases");
    assert_eq!(aliases.len(), 1, "only the rolled alias gains an index");
    assert_eq!(
        aliases[0].json(),
        json!({"actions": [{"add": {"index": "prod-jaeger-span-000002", "alias": "prod-jaeger-span-read"}}]})
    );

    // lookback: the old span index leaves the read alias; the write index stays.
    mock.respond(|s| {
        (s.method == "GET" && s.path.starts_with("/_alias/")).then(|| {
            if s.path.contains("span") {
                (200, json!({
                    // Rolled over: the write alias stays, no longer the write index.
                    "prod-jaeger-span-000001": {"aliases": {"prod-jaeger-span-read": {}, "prod-jaeger-span-write": {"is_write_index": false}}},
                    "prod-jaeger-span-000002": {"aliases": {"prod-jaeger-span-read": {}, "prod-jaeger-span-write": {"is_write_index": true}}},
                }))
            } else {
                (200, json!({"prod-jaeger-service-000001": {"aliases": {"prod-jaeger-service-read": {}, "prod-jaeger-service-write": {}}}}))
            }
        })
    });
    mock.respond(|s| {
        s.path.contains("/_settings/index.creation_date").then(|| {
            let index = s
                .path
                .trim_start_matches('/')
                .split('/')
                .next()
                .unwrap()
                .to_string();
            (
                200,
                json!({index: {"settings": {"index": {"creation_date": "1000"}}}}),
            )
        })
    });
    let r = rollover::lookback(&client, &indices, 2000).await.unwrap();
    assert!(
        r.lines[0].contains("removed prod-jaeger-span-000001"),
        "{:?}",
        r.lines
    );
    let aliases = mock.requests("POST", "/_aliases");
    assert_eq!(
        aliases.last().unwrap().json(),
        json!({"actions": [{"remove": {"index": "prod-jaeger-span-000001", "alias": "prod-jaeger-span-read"}}]})
    );
}

#[tokio::test]
async fn cleaner_deletes_only_whole_expired_dated_indices() {
    use waymark_elasticsearch::{EsClient, cleaner};
    let (mock, url) = Mock::start(es8_root()).await;
    let client = EsClient::new(&cfg(&url).client).unwrap();
    mock.respond(|s| {
        s.path.starts_with("/_cat/indices/jaeger-*").then(|| {
            (
                200,
                json!([
                    {"index": "jaeger-span-2025-11-01", "docs.count": "120"},
                    {"index": "jaeger-service-2025-11-01", "docs.count": "4"},
                    {"index": "jaeger-span-2025-11-24", "docs.count": "7"},
                    {"index": "jaeger-span-write", "docs.count": "1"},
                ]),
            )
        })
    });
    mock.respond(|s| (s.method == "DELETE").then(|| (200, json!({"acknowledged": true}))));
    let d =
        cleaner::delete_indices_before(&client, &IndexConfig::default(), T0 - 86_400_000_000_000)
            .await
            .unwrap();
    assert_eq!(
        d.indices,
        vec!["jaeger-service-2025-11-01", "jaeger-span-2025-11-01"]
    );
    assert_eq!(d.spans, 120);
    let del = mock.requests("DELETE", "/");
    assert_eq!(del.len(), 1);
    assert_eq!(
        del[0].path,
        "/jaeger-service-2025-11-01,jaeger-span-2025-11-01"
    );
}

#[tokio::test]
async fn lifecycle_policies_per_distribution() {
    use waymark_elasticsearch::{EsClient, rollover};
    let (mock, url) = Mock::start(es8_root()).await;
    mock.respond(|s| {
        s.path
            .starts_with("/_ilm/policy/")
            .then(|| (200, json!({"acknowledged": true})))
    });
    let client = EsClient::new(&cfg(&url).client).unwrap();
    rollover::put_policy(&client, &IndexConfig::default(), "jp", "1d", "7d")
        .await
        .unwrap();
    let put = &mock.requests("PUT", "/_ilm/policy/jp")[0];
    let p = put.json();
    assert_eq!(
        p["policy"]["phases"]["hot"]["actions"]["rollover"],
        json!({"max_age": "1d"})
    );
    assert_eq!(
        p["policy"]["phases"]["delete"],
        json!({"min_age": "7d", "actions": {"delete": {}}})
    );

    let (mock, url) =
        Mock::start(json!({"version": {"distribution": "opensearch", "number": "2.17.1"}})).await;
    mock.respond(|s| {
        s.path
            .starts_with("/_plugins/_ism/policies/")
            .then(|| (200, json!({"_id": "jp"})))
    });
    let client = EsClient::new(&cfg(&url).client).unwrap();
    let indices = IndexConfig {
        prefix: "prod".into(),
        ..IndexConfig::default()
    };
    rollover::put_policy(&client, &indices, "jp", "12h", "3d")
        .await
        .unwrap();
    let p = mock.requests("PUT", "/_plugins/_ism/policies/jp")[0].json();
    assert_eq!(
        p["policy"]["states"][0]["actions"][0],
        json!({"rollover": {"min_index_age": "12h"}})
    );
    assert_eq!(
        p["policy"]["states"][0]["transitions"][0]["conditions"],
        json!({"min_index_age": "3d"})
    );
    assert_eq!(
        p["policy"]["ism_template"][0]["index_patterns"],
        json!(["prod-jaeger-span-*", "prod-jaeger-service-*"])
    );

    // init --ilm-policy names it in the templates with the write alias.
    let (mock, url) = Mock::start(es8_root()).await;
    mock.respond(|s| (s.method == "HEAD").then(|| (200, json!({}))));
    let client = EsClient::new(&cfg(&url).client).unwrap();
    let options = waymark_elasticsearch::TemplateOptions {
        ilm_policy: Some("jp".into()),
        ..Default::default()
    };
    rollover::init(&client, &IndexConfig::default(), &options)
        .await
        .unwrap();
    let t = mock.requests("PUT", "/_index_template/jaeger-span")[0]
        .json()
        .to_string();
    assert!(
        t.contains("\"jp\"") && t.contains("jaeger-span-write"),
        "{t}"
    );
}

#[tokio::test]
async fn sniffing_replaces_the_urls_by_the_clusters_http_nodes() {
    let (mock, url) = Mock::start(es8_root()).await;
    let addr = url.trim_start_matches("http://").to_string();
    mock.respond(move |s| {
        s.path.starts_with("/_nodes/http").then(|| {
            (
                200,
                json!({"nodes": {
                    "n1": {"http": {"publish_address": format!("es-0.local/{addr}")}},
                    "n2": {"http": {"publish_address": addr.clone()}},
                }}),
            )
        })
    });
    let mut c = cfg("http://127.0.0.1:1");
    // The configured URL is unreachable; the first one given must answer
    // the sniff, so list the stand-in second.
    c.client.urls = vec![url.clone(), "http://127.0.0.1:1".into()];
    c.client.sniff = true;
    let store = EsStorage::open(c).await.unwrap();
    assert_eq!(
        store.client().urls(),
        vec![url.clone()],
        "both nodes publish the same address"
    );
    assert_eq!(mock.requests("GET", "/_nodes/http").len(), 1);
}
