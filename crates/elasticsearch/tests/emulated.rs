//! The storage conformance suite against an in-memory emulation of the
//! part of Elasticsearch's REST API the backend uses (`_bulk`, `_search`
//! with `bool`/`term`/`terms`/`range`/`nested` queries, `sort` and
//! `search_after`, `terms` aggregations ordered by a `max` sub-aggregation,
//! `_cat/indices`, index deletion), written from Elasticsearch's
//! documentation.
//!
//! This checks Waymark's own logic end to end (index selection, paging,
//! the final matching and ranking, retention by whole indices) with the
//! same cases the embedded engine passes. It does not prove compatibility
//! with a real cluster: that is `live.rs`, run when `WAYMARK_TEST_ES_URL`
//! is set.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use serde_json::{Value, json};
use waymark_elasticsearch::{ClientConfig, EsConfig, EsStorage};

/// index name → (_id → document)
type Indices = Arc<Mutex<BTreeMap<String, BTreeMap<String, Value>>>>;

fn wildcard(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((pre, post)) => {
            name.len() >= pre.len() + post.len() && name.starts_with(pre) && name.ends_with(post)
        }
    }
}

fn field<'a>(doc: &'a Value, path: &str) -> Vec<&'a Value> {
    // Dotted paths through objects; arrays are searched element-wise.
    let mut cur = vec![doc];
    for part in path.split('.') {
        let mut next = Vec::new();
        for v in cur {
            match v {
                Value::Object(o) => {
                    if let Some(x) = o.get(part) {
                        match x {
                            Value::Array(a) => next.extend(a.iter()),
                            x => next.push(x),
                        }
                    }
                }
                Value::Array(a) => {
                    for e in a {
                        if let Some(x) = e.get(part) {
                            next.push(x);
                        }
                    }
                }
                _ => {}
            }
        }
        cur = next;
    }
    cur
}

fn same(a: &Value, b: &Value) -> bool {
    // Keyword fields hold text; numbers and booleans compare as text too.
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    text(a) == text(b)
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

fn matches(q: &Value, doc: &Value) -> bool {
    let Some((kind, body)) = q.as_object().and_then(|o| o.iter().next()) else {
        return true;
    };
    match kind.as_str() {
        "match_all" => true,
        "term" => {
            let (f, v) = body.as_object().unwrap().iter().next().unwrap();
            let v = v.get("value").unwrap_or(v);
            field(doc, f).iter().any(|x| same(x, v))
        }
        "terms" => {
            let (f, vs) = body.as_object().unwrap().iter().next().unwrap();
            let vs = vs.as_array().unwrap();
            field(doc, f).iter().any(|x| vs.iter().any(|v| same(x, v)))
        }
        "range" => {
            let (f, r) = body.as_object().unwrap().iter().next().unwrap();
            field(doc, f).iter().any(|x| {
                // Dates given as RFC 3339 text compare as text (same format).
                let ok = |k: &str, cmp: fn(std::cmp::Ordering) -> bool| match r.get(k) {
                    None => true,
                    Some(b) => match (num(x), num(b)) {
                        (Some(x), Some(b)) => cmp(x.partial_cmp(&b).unwrap()),
                        _ => cmp(x.as_str().unwrap_or("").cmp(b.as_str().unwrap_or(""))),
                    },
                };
                ok("gte", |o| o.is_ge())
                    && ok("lte", |o| o.is_le())
                    && ok("gt", |o| o.is_gt())
                    && ok("lt", |o| o.is_lt())
            })
        }
        "bool" => {
            let all = |k: &str| {
                body.get(k)
                    .map(|v| match v {
                        Value::Array(a) => a.clone(),
                        one => vec![one.clone()],
                    })
                    .unwrap_or_default()
            };
            let must = all("must").iter().all(|c| matches(c, doc));
            let should = all("should");
            let min = body
                .get("minimum_should_match")
                .and_then(Value::as_u64)
                .unwrap_or(if all("must").is_empty() { 1 } else { 0 });
            let hits = should.iter().filter(|c| matches(c, doc)).count() as u64;
            must && (should.is_empty() || hits >= min)
        }
        "nested" => {
            let path = body["path"].as_str().unwrap();
            // Each element of the nested array must match on its own; its
            // fields are named with the path in front.
            field(doc, path).iter().any(|elem| {
                let mut wrapped = json!({});
                let mut cur = &mut wrapped;
                let parts: Vec<&str> = path.split('.').collect();
                for (i, p) in parts.iter().enumerate() {
                    cur[*p] = if i + 1 == parts.len() {
                        (*elem).clone()
                    } else {
                        json!({})
                    };
                    cur = &mut cur[*p];
                }
                matches(&body["query"], &wrapped)
            })
        }
        other => panic!("query {other} is not emulated"),
    }
}

#[derive(Clone)]
struct Emu {
    indices: Indices,
    /// (index, _id) → _seq_no, for optimistic concurrency.
    seq: Arc<Mutex<BTreeMap<(String, String), u64>>>,
}

fn targets(emu: &Emu, list: &str) -> Vec<String> {
    let idx = emu.indices.lock();
    let mut out = Vec::new();
    for pat in list.split(',') {
        for name in idx.keys() {
            if wildcard(pat, name) && !out.contains(name) {
                out.push(name.clone());
            }
        }
    }
    out
}

fn search(emu: &Emu, list: &str, q: &Value) -> Value {
    let names = targets(emu, list);
    let idx = emu.indices.lock();
    let query = q.get("query").cloned().unwrap_or(json!({"match_all": {}}));
    let mut docs: Vec<(String, String, Value)> = Vec::new();
    for n in &names {
        for (id, d) in &idx[n] {
            if matches(&query, d) {
                docs.push((n.clone(), id.clone(), d.clone()));
            }
        }
    }
    let mut out = json!({"took": 1, "hits": {"total": {"value": docs.len()}, "hits": []}});
    if let Some(aggs) = q.get("aggs").and_then(Value::as_object) {
        let mut res = serde_json::Map::new();
        for (name, a) in aggs {
            let t = &a["terms"];
            let f = t["field"].as_str().unwrap();
            let size = t["size"].as_u64().unwrap_or(10) as usize;
            let mut groups: BTreeMap<String, (u64, f64)> = BTreeMap::new();
            let sub = a
                .get("aggs")
                .and_then(|s| s.as_object())
                .and_then(|s| s.iter().next());
            for (_, _, d) in &docs {
                for v in field(d, f) {
                    let key = v.as_str().map(str::to_string).unwrap_or(v.to_string());
                    let e = groups.entry(key).or_insert((0, f64::MIN));
                    e.0 += 1;
                    if let Some((_, m)) = sub {
                        let mf = m["max"]["field"].as_str().unwrap();
                        for x in field(d, mf) {
                            e.1 = e.1.max(num(x).unwrap());
                        }
                    }
                }
            }
            let mut buckets: Vec<(String, (u64, f64))> = groups.into_iter().collect();
            if t.get("order").is_some() {
                buckets.sort_by(|a, b| b.1.1.partial_cmp(&a.1.1).unwrap().then(a.0.cmp(&b.0)));
            } else {
                buckets.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(&b.0)));
            }
            buckets.truncate(size);
            let b: Vec<Value> = buckets
                .into_iter()
                .map(|(k, (n, m))| match sub {
                    Some((sname, _)) => {
                        json!({"key": k, "doc_count": n, sname.clone(): {"value": m}})
                    }
                    None => json!({"key": k, "doc_count": n}),
                })
                .collect();
            res.insert(name.clone(), json!({"buckets": b}));
        }
        out["aggregations"] = Value::Object(res);
    }
    let size = q.get("size").and_then(Value::as_u64).unwrap_or(10) as usize;
    if size == 0 {
        return out;
    }
    let sort: Vec<(String, bool)> = q
        .get("sort")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|s| {
                    let (f, dir) = s.as_object().unwrap().iter().next().unwrap();
                    (f.clone(), dir == "asc")
                })
                .collect()
        })
        .unwrap_or_default();
    let key = |d: &Value| -> Vec<Value> {
        sort.iter()
            .map(|(f, _)| {
                field(d, f)
                    .first()
                    .map(|v| (*v).clone())
                    .unwrap_or(Value::Null)
            })
            .collect()
    };
    let cmp_vals = |a: &[Value], b: &[Value]| {
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            let o = match (num(x), num(y), x.as_str(), y.as_str()) {
                (Some(x), Some(y), _, _) if x.is_finite() && y.is_finite() && !x.is_nan() => {
                    x.partial_cmp(&y).unwrap()
                }
                (_, _, Some(x), Some(y)) => x.cmp(y),
                _ => std::cmp::Ordering::Equal,
            };
            let o = if sort[i].1 { o } else { o.reverse() };
            if o.is_ne() {
                return o;
            }
        }
        std::cmp::Ordering::Equal
    };
    docs.sort_by(|a, b| cmp_vals(&key(&a.2), &key(&b.2)));
    if let Some(after) = q.get("search_after").and_then(Value::as_array) {
        docs.retain(|d| cmp_vals(&key(&d.2), after).is_gt());
    }
    docs.truncate(size);
    out["hits"]["hits"] = Value::Array(
        docs.into_iter()
            .map(|(i, id, d)| {
                let s = key(&d);
                json!({"_index": i, "_id": id, "_source": d, "sort": s})
            })
            .collect(),
    );
    out
}

async fn handle(State(emu): State<Emu>, method: Method, uri: Uri, body: Bytes) -> Response {
    let path = uri.path().trim_start_matches('/').to_string();
    let ok = |v: Value| (StatusCode::OK, axum::Json(v)).into_response();
    match (method.as_str(), path.as_str()) {
        ("GET", "") => {
            ok(json!({"version": {"number": "8.15.2"}, "tagline": "You Know, for Search"}))
        }
        ("PUT", p) if p.starts_with("_index_template/") => ok(json!({"acknowledged": true})),
        ("POST", "_bulk") => {
            let text = String::from_utf8(body.to_vec()).unwrap();
            let lines: Vec<Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            let mut items = Vec::new();
            let mut idx = emu.indices.lock();
            for pair in lines.chunks(2) {
                let meta = &pair[0]["index"];
                let index = meta["_index"].as_str().unwrap().to_string();
                let id = meta["_id"].as_str().unwrap().to_string();
                idx.entry(index.clone())
                    .or_default()
                    .insert(id.clone(), pair[1].clone());
                items.push(json!({"index": {"_index": index, "_id": id, "status": 201}}));
            }
            ok(json!({"took": 1, "errors": false, "items": items}))
        }
        ("POST", p) if p.ends_with("/_search") => {
            let list = p.trim_end_matches("/_search");
            ok(search(&emu, list, &serde_json::from_slice(&body).unwrap()))
        }
        ("POST", p) if p.ends_with("/_refresh") => ok(json!({"_shards": {"failed": 0}})),
        ("POST", p) if p.ends_with("/_delete_by_query") => {
            let list = p.trim_end_matches("/_delete_by_query");
            let q: Value = serde_json::from_slice(&body).unwrap();
            let names = targets(&emu, list);
            let mut idx = emu.indices.lock();
            let mut deleted = 0;
            for n in names {
                let docs = idx.get_mut(&n).unwrap();
                let before = docs.len();
                docs.retain(|_, d| !matches(&q["query"], d));
                deleted += before - docs.len();
            }
            ok(json!({"deleted": deleted}))
        }
        ("PUT", p) if !p.contains('/') => {
            let mut idx = emu.indices.lock();
            if idx.contains_key(p) {
                return (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({"error": {"type": "resource_already_exists_exception", "reason": format!("index [{p}] already exists")}, "status": 400})),
                )
                    .into_response();
            }
            idx.insert(p.to_string(), BTreeMap::new());
            ok(json!({"acknowledged": true, "index": p}))
        }
        ("PUT", p) if p.contains("/_doc/") || p.contains("/_create/") => {
            let (index, rest) = p.split_once('/').unwrap();
            let (op, id) = rest.split_once('/').unwrap();
            let q: BTreeMap<String, String> = uri
                .query()
                .unwrap_or("")
                .split('&')
                .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.into(), v.into())))
                .collect();
            let mut idx = emu.indices.lock();
            let mut seq = emu.seq.lock();
            let docs = idx.entry(index.to_string()).or_default();
            let key = (index.to_string(), id.to_string());
            let conflict = |why: &str| {
                (
                    StatusCode::CONFLICT,
                    axum::Json(json!({"error": {"type": "version_conflict_engine_exception", "reason": why}, "status": 409})),
                )
                    .into_response()
            };
            if op == "_create" && docs.contains_key(id) {
                return conflict("document already exists");
            }
            if let Some(want) = q.get("if_seq_no")
                && seq.get(&key).map(|s| s.to_string()).as_deref() != Some(want.as_str())
            {
                return conflict("required seqNo differs");
            }
            docs.insert(id.to_string(), serde_json::from_slice(&body).unwrap());
            let n = seq.values().max().copied().unwrap_or(0) + 1;
            seq.insert(key, n);
            (StatusCode::CREATED, axum::Json(json!({"_index": index, "_id": id, "result": "created", "_seq_no": n, "_primary_term": 1}))).into_response()
        }
        ("GET", p) if p.contains("/_doc/") => {
            let (index, id) = p.split_once("/_doc/").unwrap();
            let idx = emu.indices.lock();
            match idx.get(index).and_then(|d| d.get(id)) {
                Some(d) => {
                    let n = emu
                        .seq
                        .lock()
                        .get(&(index.to_string(), id.to_string()))
                        .copied()
                        .unwrap_or(0);
                    ok(
                        json!({"_index": index, "_id": id, "found": true, "_seq_no": n, "_primary_term": 1, "_source": d}),
                    )
                }
                None => (
                    StatusCode::NOT_FOUND,
                    axum::Json(json!({"_index": index, "_id": id, "found": false})),
                )
                    .into_response(),
            }
        }
        ("GET", p) if p.starts_with("_cat/indices/") => {
            let list = p.trim_start_matches("_cat/indices/");
            let names = targets(&emu, list);
            let idx = emu.indices.lock();
            ok(Value::Array(
                names
                    .iter()
                    .map(|n| json!({"index": n, "docs.count": idx[n].len().to_string()}))
                    .collect(),
            ))
        }
        ("DELETE", list) => {
            let names = targets(&emu, list);
            let mut idx = emu.indices.lock();
            for n in names {
                idx.remove(&n);
            }
            ok(json!({"acknowledged": true}))
        }
        (m, p) => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": {"type": "not_emulated", "reason": format!("{m} /{p}")}})),
        )
            .into_response(),
    }
}

async fn emulated_store() -> (EsStorage, ()) {
    let emu = Emu {
        indices: Default::default(),
        seq: Default::default(),
    };
    let app = Router::new().fallback(handle).with_state(emu);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let store = EsStorage::open(EsConfig {
        client: ClientConfig {
            urls: vec![url],
            ..ClientConfig::default()
        },
        // The suite writes spans ten days old.
        max_span_age: std::time::Duration::from_secs(12 * 24 * 3600),
        delete_expired_indices: true,
        ..EsConfig::default()
    })
    .await
    .unwrap();
    (store, ())
}

/// A span as Jaeger's document keeps it (microseconds, no dropped counts,
/// ...): the documents' own round trip is tested field for field in
/// `documents.rs`.
fn representable(span: &waymark_model::Span) -> waymark_model::Span {
    let fields = waymark_elasticsearch::TagsAsFields::default();
    waymark_elasticsearch::SpanDocument::from_span(span, &fields)
        .to_span(&fields)
        .unwrap()
}

waymark_testkit::storage_conformance!(emulated_store, representable);

/// Of several collectors taking over an expired lease at once, the
/// cluster's optimistic concurrency lets exactly one win.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_winner_for_an_expired_lease() {
    use waymark_storage::Storage;
    let (store, _) = emulated_store().await;
    let ss = store
        .sampling_store()
        .expect("elasticsearch keeps sampling state");
    let ttl = std::time::Duration::from_secs(10);
    assert!(ss.acquire_lease("leader", "old", 0, ttl).await.unwrap());
    let later = 60_000_000_000;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let ss = ss.clone();
            tokio::spawn(async move {
                ss.acquire_lease("leader", &format!("c{i}"), later, ttl)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut winners = 0;
    for t in tasks {
        winners += t.await.unwrap() as usize;
    }
    assert_eq!(winners, 1);
}
