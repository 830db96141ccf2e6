//! The storage conformance suite. Every backend runs every case unchanged
//! through [`storage_conformance!`](crate::storage_conformance):
//!
//! ```ignore
//! waymark_testkit::storage_conformance!(|| async { (make_store().await, guard) });
//! ```
//!
//! Each case takes an empty store and panics with a message saying what
//! behaviour differed.

use std::collections::BTreeSet;
use std::sync::Arc;

use waymark_model::*;
use waymark_storage::{Storage, TraceQuery};

use crate::{fixture_trace, now_ns, span};

const MS: u64 = 1_000_000;
const HOUR: u64 = 3_600_000 * MS;

fn sorted(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort_by_key(|s| (s.start_time_unix_nano, s.span_id));
    spans
}

fn ids(traces: &[Trace]) -> Vec<TraceId> {
    traces.iter().map(|t| t.trace_id).collect()
}

fn tid(n: u128) -> TraceId {
    TraceId(n.to_be_bytes())
}

/// Every field of every span comes back exactly, from the head and after a
/// flush.
pub async fn write_and_read_back(store: &dyn Storage) {
    write_and_read_back_as(store, Span::clone).await
}

/// As [`write_and_read_back`], for a backend whose stored form cannot carry
/// every field (Jaeger's Elasticsearch documents keep microseconds, say):
/// what comes back must be exactly `representable(span)`, the span as that
/// form keeps it.
pub async fn write_and_read_back_as(store: &dyn Storage, representable: impl Fn(&Span) -> Span) {
    let t0 = now_ns() - HOUR;
    let fixture = fixture_trace(t0);
    let id = fixture[0].trace_id;
    store.write(fixture.clone()).await.unwrap();
    let expected = sorted(fixture.iter().map(&representable).collect());
    let got = store
        .get_trace(id)
        .await
        .unwrap()
        .expect("trace stored before flush");
    assert_eq!(got.spans, expected, "read back before flush");
    store.flush().await.unwrap();
    let got = store
        .get_trace(id)
        .await
        .unwrap()
        .expect("trace stored after flush");
    assert_eq!(got.spans, expected, "read back after flush");
    assert_eq!(got.spans[0].resource.service_name(), "frontend");
}

/// An unknown id is `None`, not an error.
pub async fn missing_trace_is_none(store: &dyn Storage) {
    store.write(fixture_trace(now_ns())).await.unwrap();
    assert!(store.get_trace(tid(42)).await.unwrap().is_none());
}

/// A trace written in several parts, some flushed and some not, is whole.
pub async fn trace_split_across_flushes(store: &dyn Storage) {
    let t0 = now_ns() - HOUR;
    store
        .write(vec![span(7, 1, None, "a", "root", t0, 10 * MS)])
        .await
        .unwrap();
    store.flush().await.unwrap();
    store
        .write(vec![span(7, 2, Some(1), "b", "child", t0 + MS, MS)])
        .await
        .unwrap();
    store.flush().await.unwrap();
    store
        .write(vec![span(7, 3, Some(2), "c", "leaf", t0 + 2 * MS, MS)])
        .await
        .unwrap();
    let t = store.get_trace(tid(7)).await.unwrap().unwrap();
    assert_eq!(t.spans.len(), 3, "all parts of the trace");
    let found = store
        .find_traces(&TraceQuery {
            service: Some("c".into()),
            ..TraceQuery::all(0, u64::MAX, 10)
        })
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].spans.len(), 3, "search returns whole traces");
}

fn tagged(
    trace: u128,
    service: &str,
    op: &str,
    start: u64,
    dur: u64,
    attrs: Vec<KeyValue>,
) -> Span {
    let mut s = span(trace, trace as u64 * 10 + 1, None, service, op, start, dur);
    s.attributes = attrs;
    s
}

fn kv_s(k: &str, v: &str) -> KeyValue {
    KeyValue::new(k, AnyValue::String(v.into()))
}

/// Search filters: service, operation, kind, tags (span, resource, event;
/// AND-ed on one span), duration, time range, ordering and limit.
pub async fn search_semantics(store: &dyn Storage, flush_between: bool) {
    let t0 = now_ns() - 2 * HOUR;
    let mut batch = vec![
        tagged(
            1,
            "shop",
            "GET /",
            t0,
            5 * MS,
            vec![kv_s("http.method", "GET")],
        ),
        tagged(
            2,
            "shop",
            "GET /",
            t0 + MS,
            50 * MS,
            vec![
                kv_s("http.method", "GET"),
                KeyValue::new("http.status_code", AnyValue::Int(500)),
            ],
        ),
        tagged(
            3,
            "shop",
            "POST /pay",
            t0 + 2 * MS,
            20 * MS,
            vec![kv_s("http.method", "POST")],
        ),
        tagged(
            4,
            "billing",
            "charge",
            t0 + 3 * MS,
            7 * MS,
            vec![KeyValue::new("retry", AnyValue::Bool(true))],
        ),
    ];
    // Trace 5: tag A on one span, tag B on another: must not match A AND B.
    let mut a = tagged(5, "shop", "GET /", t0 + 4 * MS, MS, vec![kv_s("a", "1")]);
    a.span_id = SpanId(51u64.to_be_bytes());
    let mut b = tagged(5, "shop", "GET /", t0 + 4 * MS, MS, vec![kv_s("b", "2")]);
    b.span_id = SpanId(52u64.to_be_bytes());
    batch.push(a);
    batch.push(b);
    // Trace 6: the tag is on an event.
    let mut e = tagged(6, "shop", "GET /", t0 + 5 * MS, 2 * MS, vec![]);
    e.kind = SpanKind::Server;
    e.events.push(Event {
        time_unix_nano: t0 + 5 * MS,
        name: "retry".into(),
        attributes: vec![kv_s("attempt", "second")],
        dropped_attributes_count: 0,
    });
    e.status.code = StatusCode::Error;
    batch.push(e);
    store.write(batch).await.unwrap();
    if flush_between {
        store.flush().await.unwrap();
    }
    let all = |limit| TraceQuery::all(t0 - HOUR, t0 + HOUR, limit);

    let q = TraceQuery {
        service: Some("shop".into()),
        ..all(20)
    };
    assert_eq!(
        ids(&store.find_traces(&q).await.unwrap()),
        vec![tid(6), tid(5), tid(3), tid(2), tid(1)],
        "service filter, most recent first"
    );

    let q = TraceQuery {
        service: Some("shop".into()),
        limit: 2,
        ..all(2)
    };
    assert_eq!(
        ids(&store.find_traces(&q).await.unwrap()),
        vec![tid(6), tid(5)],
        "limit keeps the most recent"
    );

    let q = TraceQuery {
        service: Some("shop".into()),
        operation: Some("GET /".into()),
        ..all(20)
    };
    assert_eq!(
        ids(&store.find_traces(&q).await.unwrap()),
        vec![tid(6), tid(5), tid(2), tid(1)],
        "operation filter"
    );

    let q = TraceQuery {
        service: Some("shop".into()),
        span_kind: Some(SpanKind::Server),
        ..all(20)
    };
    assert_eq!(
        ids(&store.find_traces(&q).await.unwrap()),
        vec![tid(6)],
        "kind filter"
    );

    let q = TraceQuery {
        tags: vec![
            ("http.method".into(), "GET".into()),
            ("http.status_code".into(), "500".into()),
        ],
        ..all(20)
    };
    assert_eq!(
        ids(&store.find_traces(&q).await.unwrap()),
        vec![tid(2)],
        "two tags, typed int compared as text"
    );

    let q = TraceQuery {
        tags: vec![("a".into(), "1".into()), ("b".into(), "2".into())],
        ..all(20)
    };
    assert!(
        store.find_traces(&q).await.unwrap().is_empty(),
        "tags must hold on one span"
    );

    let q = TraceQuery {
        tags: vec![
            ("host.name".into(), "node-1".into()),
            ("retry".into(), "true".into()),
        ],
        ..all(20)
    };
    assert_eq!(
        ids(&store.find_traces(&q).await.unwrap()),
        vec![tid(4)],
        "resource attribute and bool tag"
    );

    let q = TraceQuery {
        tags: vec![("attempt".into(), "second".into())],
        ..all(20)
    };
    assert_eq!(
        ids(&store.find_traces(&q).await.unwrap()),
        vec![tid(6)],
        "event attribute"
    );

    let q = TraceQuery {
        tags: vec![("error".into(), "true".into())],
        ..all(20)
    };
    assert_eq!(
        ids(&store.find_traces(&q).await.unwrap()),
        vec![tid(6)],
        "error=true matches error status"
    );

    let q = TraceQuery {
        duration_min: Some(7 * MS),
        duration_max: Some(20 * MS),
        ..all(20)
    };
    assert_eq!(
        ids(&store.find_traces(&q).await.unwrap()),
        vec![tid(4), tid(3)],
        "duration range is inclusive"
    );

    let q = TraceQuery {
        start_min: t0 + 2 * MS,
        start_max: t0 + 3 * MS,
        ..all(20)
    };
    assert_eq!(
        ids(&store.find_traces(&q).await.unwrap()),
        vec![tid(4), tid(3)],
        "start range is inclusive"
    );

    let q = TraceQuery {
        service: Some("nope".into()),
        ..all(20)
    };
    assert!(
        store.find_traces(&q).await.unwrap().is_empty(),
        "unknown service"
    );
}

/// Services and operations (with kinds) are listed, sorted.
pub async fn services_and_operations(store: &dyn Storage) {
    let t0 = now_ns();
    let mut s1 = span(1, 1, None, "shop", "GET /", t0, MS);
    s1.kind = SpanKind::Server;
    let mut s2 = span(1, 2, Some(1), "shop", "query", t0, MS);
    s2.kind = SpanKind::Client;
    let s3 = span(1, 3, Some(2), "db", "exec", t0, MS);
    store.write(vec![s1, s2]).await.unwrap();
    store.flush().await.unwrap();
    store.write(vec![s3]).await.unwrap();
    assert_eq!(
        store.services().await.unwrap(),
        vec!["db".to_string(), "shop".to_string()]
    );
    let ops = store.operations("shop", None).await.unwrap();
    let names: Vec<_> = ops.iter().map(|o| (o.name.as_str(), o.kind)).collect();
    assert_eq!(
        names,
        vec![("GET /", SpanKind::Server), ("query", SpanKind::Client)]
    );
    let ops = store
        .operations("shop", Some(SpanKind::Client))
        .await
        .unwrap();
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0].name, "query");
    assert!(store.operations("none", None).await.unwrap().is_empty());
}

/// Dependencies count calls between services in a time window.
pub async fn dependencies(store: &dyn Storage) {
    let t0 = now_ns() - HOUR;
    let mut spans = Vec::new();
    for t in 1..=3u128 {
        spans.push(span(t, 1, None, "front", "GET", t0, 10 * MS));
        let mut c = span(t, 2, Some(1), "back", "work", t0 + MS, MS);
        if t == 3 {
            c.status.code = StatusCode::Error;
        }
        spans.push(c);
        spans.push(span(t, 3, Some(2), "back", "inner", t0 + MS, MS));
    }
    store.write(spans).await.unwrap();
    store.flush().await.unwrap();
    store
        .write(vec![
            span(9, 1, None, "front", "GET", t0, MS),
            span(9, 2, Some(1), "db", "q", t0, MS),
        ])
        .await
        .unwrap();
    let deps = store.dependencies(t0 + HOUR, 2 * HOUR).await.unwrap();
    let got: Vec<_> = deps
        .iter()
        .map(|d| {
            (
                d.parent.as_str(),
                d.child.as_str(),
                d.call_count,
                d.error_count,
            )
        })
        .collect();
    assert_eq!(got, vec![("front", "back", 3, 1), ("front", "db", 1, 0)]);
    let none = store.dependencies(t0 - HOUR, HOUR / 2).await.unwrap();
    assert!(none.is_empty(), "window before the spans: {none:?}");

    // A call whose parent was stored earlier than its child (flushed in
    // between, so in another block, index or file) still counts: with the
    // child unflushed, and again once both are flushed.
    store.flush().await.unwrap();
    store
        .write(vec![span(20, 1, None, "gateway", "GET", t0, 10 * MS)])
        .await
        .unwrap();
    store.flush().await.unwrap();
    let mut late = span(20, 2, Some(1), "auth", "check", t0 + MS, MS);
    late.status.code = StatusCode::Error;
    store.write(vec![late]).await.unwrap();
    let pair = |deps: Vec<waymark_storage::DependencyLink>| {
        deps.into_iter()
            .find(|d| d.parent == "gateway" && d.child == "auth")
            .map(|d| (d.call_count, d.error_count))
    };
    assert_eq!(
        pair(store.dependencies(t0 + HOUR, 2 * HOUR).await.unwrap()),
        Some((1, 1)),
        "parent stored, child not yet flushed"
    );
    store.flush().await.unwrap();
    assert_eq!(
        pair(store.dependencies(t0 + HOUR, 2 * HOUR).await.unwrap()),
        Some((1, 1)),
        "parent and child flushed apart"
    );
}

/// Retention deletes old data and keeps recent data.
pub async fn retention(store: &dyn Storage) {
    let now = now_ns();
    let old = now - 10 * 24 * HOUR;
    store
        .write(vec![span(1, 1, None, "svc", "old", old, MS)])
        .await
        .unwrap();
    store.flush().await.unwrap();
    store
        .write(vec![span(2, 1, None, "svc", "new", now, MS)])
        .await
        .unwrap();
    store.flush().await.unwrap();
    let report = store.purge_before(now - 7 * 24 * HOUR).await.unwrap();
    assert!(report.spans_deleted >= 1, "{report:?}");
    assert!(
        store.get_trace(tid(1)).await.unwrap().is_none(),
        "old trace purged"
    );
    assert!(
        store.get_trace(tid(2)).await.unwrap().is_some(),
        "new trace kept"
    );
}

/// Writers in parallel lose nothing.
pub async fn concurrent_writers(store: Arc<dyn Storage>) {
    let t0 = now_ns() - HOUR;
    let mut tasks = Vec::new();
    for w in 0..8u128 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..40u128 {
                let t = w * 1000 + i + 1;
                store
                    .write(vec![
                        span(t, 1, None, "w", "root", t0 + i as u64, MS),
                        span(t, 2, Some(1), "w", "child", t0 + i as u64, MS),
                    ])
                    .await
                    .unwrap();
                if i == 20 && w == 0 {
                    store.flush().await.unwrap();
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut missing = BTreeSet::new();
    for w in 0..8u128 {
        for i in 0..40u128 {
            let t = w * 1000 + i + 1;
            match store.get_trace(tid(t)).await.unwrap() {
                Some(tr) if tr.spans.len() == 2 => {}
                _ => {
                    missing.insert(t);
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "traces lost by concurrent writers: {missing:?}"
    );
    let found = store
        .find_traces(&TraceQuery::all(0, u64::MAX, 1000))
        .await
        .unwrap();
    assert_eq!(found.len(), 320);
}

/// Adaptive sampling's state: buckets from several collectors come back in
/// time order and filtered by start, the latest probabilities replace the
/// previous ones, and a lease has one holder until it expires.
pub async fn sampling_state(store: &dyn Storage) {
    use waymark_storage::sampling::*;
    let Some(ss) = store.sampling_store() else {
        eprintln!("this backend keeps no adaptive-sampling state");
        return;
    };
    let t = now_ns();
    let min = 60_000 * MS;
    let bucket = |collector: &str, start_ns: u64, count: u64| ThroughputBucket {
        collector: collector.into(),
        start_ns,
        interval_ns: min,
        operations: vec![OperationThroughput {
            service: "checkout".into(),
            operation: "GET /cart".into(),
            count,
            probabilities: vec![0.25],
        }],
    };
    assert!(ss.throughput_since(0).await.unwrap().is_empty());
    ss.put_throughput(bucket("b", t - min, 7)).await.unwrap();
    ss.put_throughput(bucket("a", t - 3 * min, 5))
        .await
        .unwrap();
    ss.put_throughput(bucket("a", t - 2 * min, 6))
        .await
        .unwrap();
    let got = ss.throughput_since(t - 2 * min - min / 2).await.unwrap();
    assert_eq!(
        got,
        vec![bucket("a", t - 2 * min, 6), bucket("b", t - min, 7)]
    );
    assert_eq!(ss.throughput_since(0).await.unwrap().len(), 3);

    assert_eq!(ss.latest_probabilities().await.unwrap(), None);
    let probs = |p: f64| SamplingProbabilities {
        computed_at_ns: t,
        collector: "a".into(),
        operations: vec![OperationProbability {
            service: "checkout".into(),
            operation: "GET /cart".into(),
            probability: p,
            sampled_per_second: 1.5,
        }],
    };
    ss.put_probabilities(probs(0.5)).await.unwrap();
    // A value whose shortest decimal form needs all 17 digits: it must
    // come back bit for bit (a restart hands out exactly what was computed).
    let p = 0.031223980098382086;
    ss.put_probabilities(probs(p)).await.unwrap();
    assert_eq!(ss.latest_probabilities().await.unwrap(), Some(probs(p)));

    let ttl = std::time::Duration::from_secs(10);
    let s = 1_000 * MS;
    assert!(
        ss.acquire_lease("adaptive-leader", "a", t, ttl)
            .await
            .unwrap()
    );
    assert!(
        !ss.acquire_lease("adaptive-leader", "b", t + s, ttl)
            .await
            .unwrap(),
        "held by a"
    );
    assert!(
        ss.acquire_lease("adaptive-leader", "a", t + 5 * s, ttl)
            .await
            .unwrap(),
        "renewed"
    );
    assert!(
        !ss.acquire_lease("adaptive-leader", "b", t + 14 * s, ttl)
            .await
            .unwrap(),
        "renewal extends"
    );
    assert!(
        ss.acquire_lease("adaptive-leader", "b", t + 16 * s, ttl)
            .await
            .unwrap(),
        "expired"
    );
    assert!(
        !ss.acquire_lease("adaptive-leader", "a", t + 17 * s, ttl)
            .await
            .unwrap()
    );
    assert!(
        ss.acquire_lease("other-lease", "a", t + 17 * s, ttl)
            .await
            .unwrap(),
        "leases are independent"
    );
}

/// Generates one `#[tokio::test]` per conformance case. `$factory` is a
/// closure returning a future of `(store, guard)`; the guard (a temp dir,
/// say) lives as long as the test.
#[macro_export]
macro_rules! storage_conformance {
    ($factory:expr) => {
        $crate::storage_conformance!($factory, waymark_model::Span::clone);
    };
    ($factory:expr, $representable:expr) => {
        mod storage_conformance {
            use super::*;
            use $crate::conformance as c;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sampling_state() {
                let (s, _g) = ($factory)().await;
                c::sampling_state(&s).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn write_and_read_back() {
                let (s, _g) = ($factory)().await;
                c::write_and_read_back_as(&s, $representable).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn missing_trace_is_none() {
                let (s, _g) = ($factory)().await;
                c::missing_trace_is_none(&s).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn trace_split_across_flushes() {
                let (s, _g) = ($factory)().await;
                c::trace_split_across_flushes(&s).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn search_semantics_head() {
                let (s, _g) = ($factory)().await;
                c::search_semantics(&s, false).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn search_semantics_flushed() {
                let (s, _g) = ($factory)().await;
                c::search_semantics(&s, true).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn services_and_operations() {
                let (s, _g) = ($factory)().await;
                c::services_and_operations(&s).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn dependencies() {
                let (s, _g) = ($factory)().await;
                c::dependencies(&s).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn retention() {
                let (s, _g) = ($factory)().await;
                c::retention(&s).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_writers() {
                let (s, _g) = ($factory)().await;
                c::concurrent_writers(std::sync::Arc::new(s)).await;
            }
        }
    };
}
