//! Jaeger's HTTP query API (`/api/...`), in the envelope
//! `{"data","total","limit","offset","errors"}`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use waymark_model::{SpanKind, TraceId};
use waymark_query::AdjustedTrace;
use waymark_storage::{StorageError, TraceQuery};

use crate::params::{ParamError, Params, parse_lookback};
use crate::{ApiState, jaeger_json, now_ns};

/// Default number of traces a search returns (Jaeger's default).
pub const DEFAULT_LIMIT: usize = 100;
/// Most traces one search may ask for.
pub const MAX_LIMIT: usize = 1_500;
/// Search window when the request gives neither `start` nor `lookback`
/// (Jaeger's two days).
pub const DEFAULT_LOOKBACK_NS: u64 = 48 * 3_600_000_000_000;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/services", get(services))
        .route(
            "/api/services/{service}/operations",
            get(service_operations),
        )
        .route("/api/operations", get(operations))
        .route("/api/traces", get(search))
        .route("/api/traces/{id}", get(trace_by_id))
        .route("/api/dependencies", get(dependencies))
        .route("/api/transform", post(transform))
        .route("/api/archive/{id}", post(archive).get(archived))
}

/// A successful envelope.
pub fn ok(data: Value, total: usize, pretty: bool) -> Response {
    let body =
        json!({"data": data, "total": total, "limit": 0, "offset": 0, "errors": Value::Null});
    json_response(StatusCode::OK, &body, pretty)
}

/// An error envelope with `status` and a message.
pub fn err(status: StatusCode, msg: impl Into<String>) -> Response {
    let body = json!({
        "data": Value::Null, "total": 0, "limit": 0, "offset": 0,
        "errors": [{"code": status.as_u16(), "msg": msg.into()}],
    });
    json_response(status, &body, false)
}

fn json_response(status: StatusCode, body: &Value, pretty: bool) -> Response {
    let text = if pretty {
        serde_json::to_string_pretty(body)
    } else {
        serde_json::to_string(body)
    }
    .unwrap_or_default();
    (status, [(header::CONTENT_TYPE, "application/json")], text).into_response()
}

fn storage_err(e: StorageError) -> Response {
    let failure = crate::storage_failure(&e);
    let mut r = err(failure.answer().http, e.to_string());
    failure.add_retry_after(&mut r);
    r
}

fn bad(e: ParamError) -> Response {
    err(StatusCode::BAD_REQUEST, e.0)
}

async fn services(State(st): State<ApiState>) -> Response {
    match st.query.services().await {
        Ok(s) => {
            let n = s.len();
            ok(json!(s), n, false)
        }
        Err(e) => storage_err(e),
    }
}

async fn service_operations(State(st): State<ApiState>, Path(service): Path<String>) -> Response {
    match st.query.operations(&service, None).await {
        Ok(ops) => {
            let mut names: Vec<String> = ops.into_iter().map(|o| o.name).collect();
            names.dedup();
            let n = names.len();
            ok(json!(names), n, false)
        }
        Err(e) => storage_err(e),
    }
}

async fn operations(State(st): State<ApiState>, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q.as_deref());
    let Some(service) = p.get(&["service"]) else {
        return err(StatusCode::BAD_REQUEST, "parameter 'service' is required");
    };
    let kind = match p.get(&["spanKind", "span_kind"]) {
        None => None,
        Some(k) => match SpanKind::from_jaeger_name(k) {
            Some(k) => Some(k),
            None => {
                return err(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "unsupported spanKind {k:?}: expected server, client, producer, consumer, internal or unspecified"
                    ),
                );
            }
        },
    };
    match st.query.operations(service, kind).await {
        Ok(ops) => {
            let data: Vec<Value> = ops
                .iter()
                .map(|o| json!({"name": o.name, "spanKind": o.kind.jaeger_name()}))
                .collect();
            let n = data.len();
            ok(Value::Array(data), n, false)
        }
        Err(e) => storage_err(e),
    }
}

/// Parses a trace id from the path or a parameter.
pub fn parse_trace_id(s: &str) -> Result<TraceId, String> {
    TraceId::from_hex(s).map_err(|e| format!("invalid trace id {s:?}: {e}"))
}

async fn trace_by_id(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let p = Params::parse(q.as_deref());
    let raw = p.get(&["raw"]) == Some("true");
    let pretty = p.get(&["prettyPrint"]) == Some("true");
    let id = match parse_trace_id(&id) {
        Ok(id) => id,
        Err(e) => return err(StatusCode::BAD_REQUEST, e),
    };
    match st.query.get_trace(id, raw).await {
        Ok(Some(tr)) => ok(json!([jaeger_json::trace(&tr)]), 1, pretty),
        Ok(None) => err(StatusCode::NOT_FOUND, "trace not found"),
        Err(e) => storage_err(e),
    }
}

/// Parses Jaeger's search parameters into a query.
pub fn parse_search(p: &Params, now: u64) -> Result<TraceQuery, ParamError> {
    let service = p.get(&["service"]).map(str::to_string);
    let operation = p.get(&["operation"]).map(str::to_string);
    let mut tags: Vec<(String, String)> = Vec::new();
    if let Some(raw) = p.get(&["tags"]) {
        let v: Value = serde_json::from_str(raw).map_err(|e| {
            ParamError(format!("unable to parse param 'tags': not valid JSON: {e}"))
        })?;
        let Value::Object(m) = v else {
            return Err(ParamError(
                "unable to parse param 'tags': expected a JSON object of key/value pairs".into(),
            ));
        };
        for (k, v) in m {
            let v = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            tags.push((k, v));
        }
    }
    for t in p.all("tag") {
        let Some((k, v)) = t.split_once(':') else {
            return Err(ParamError(format!(
                "malformed 'tag' parameter {t:?}: expected 'key:value'"
            )));
        };
        tags.push((k.to_string(), v.to_string()));
    }
    let end_us: Option<u64> = p.int(&["end"])?;
    let start_us: Option<u64> = p.int(&["start"])?;
    let end = end_us.map(|u| u.saturating_mul(1_000)).unwrap_or(now);
    let start = match start_us {
        Some(u) => u.saturating_mul(1_000),
        None => {
            let lookback = match p.get(&["lookback"]) {
                Some(l) if l != "custom" => parse_lookback(l)
                    .map_err(|e| ParamError(format!("unable to parse param 'lookback': {e}")))?,
                _ => DEFAULT_LOOKBACK_NS,
            };
            end.saturating_sub(lookback)
        }
    };
    if start > end {
        return Err(ParamError(format!(
            "'start' ({}) is after 'end' ({})",
            start / 1000,
            end / 1000
        )));
    }
    let duration_min = p.duration(&["minDuration"])?;
    let duration_max = p.duration(&["maxDuration"])?;
    if let (Some(a), Some(b)) = (duration_min, duration_max)
        && a > b
    {
        return Err(ParamError(
            "'maxDuration' should be greater than 'minDuration'".into(),
        ));
    }
    let limit = match p.int::<i64>(&["limit"])? {
        None | Some(0) => DEFAULT_LIMIT,
        Some(n) if n < 0 => {
            return Err(ParamError(
                "unable to parse param 'limit': must not be negative".into(),
            ));
        }
        Some(n) => (n as usize).min(MAX_LIMIT),
    };
    let span_kind = match p.get(&["spanKind"]) {
        None => None,
        Some(k) => Some(
            SpanKind::from_jaeger_name(k)
                .ok_or_else(|| ParamError(format!("unsupported spanKind {k:?}")))?,
        ),
    };
    Ok(TraceQuery {
        service,
        operation,
        span_kind,
        tags,
        start_min: start,
        start_max: end,
        duration_min,
        duration_max,
        limit,
    })
}

async fn search(State(st): State<ApiState>, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q.as_deref());
    let raw = p.get(&["raw"]) == Some("true");
    let pretty = p.get(&["prettyPrint"]) == Some("true");
    let ids: Vec<&str> = p.all("traceID").collect();
    let mut missing: Vec<Value> = Vec::new();
    let traces: Vec<AdjustedTrace> = if !ids.is_empty() {
        let mut out = Vec::new();
        for raw_id in ids {
            let id = match parse_trace_id(raw_id) {
                Ok(id) => id,
                Err(e) => {
                    return err(
                        StatusCode::BAD_REQUEST,
                        format!("unable to parse param 'traceID': {e}"),
                    );
                }
            };
            match st.query.get_trace(id, raw).await {
                Ok(Some(t)) => out.push(t),
                Ok(None) => missing.push(json!({"msg": "trace not found", "traceID": raw_id})),
                Err(e) => return storage_err(e),
            }
        }
        out
    } else {
        let q = match parse_search(&p, now_ns()) {
            Ok(q) => q,
            Err(e) => return bad(e),
        };
        if q.service.is_none() {
            return err(StatusCode::BAD_REQUEST, "parameter 'service' is required");
        }
        match st.query.find_traces(&q, raw).await {
            Ok(t) => t,
            Err(e) => return storage_err(e),
        }
    };
    let data: Vec<Value> = traces.iter().map(jaeger_json::trace).collect();
    let n = data.len();
    if missing.is_empty() {
        ok(Value::Array(data), n, pretty)
    } else {
        let body = json!({"data": data, "total": n, "limit": 0, "offset": 0, "errors": missing});
        json_response(StatusCode::OK, &body, pretty)
    }
}

async fn dependencies(State(st): State<ApiState>, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q.as_deref());
    let end_ms: Option<u64> = match p.int(&["endTs"]) {
        Ok(v) => v,
        Err(e) => return bad(e),
    };
    let lookback_ms: Option<u64> = match p.int(&["lookback"]) {
        Ok(v) => v,
        Err(e) => return bad(e),
    };
    let end = end_ms
        .map(|m| m.saturating_mul(1_000_000))
        .unwrap_or_else(now_ns);
    let lookback = lookback_ms
        .map(|m| m.saturating_mul(1_000_000))
        .unwrap_or(86_400_000_000_000);
    let service = p.get(&["service"]);
    match st.query.dependencies(end, lookback).await {
        Ok(links) => {
            let data: Vec<Value> = links
                .iter()
                .filter(|l| service.is_none_or(|s| l.parent == s || l.child == s))
                .map(|l| json!({"parent": l.parent, "child": l.child, "callCount": l.call_count, "errorCount": l.error_count}))
                .collect();
            let n = data.len();
            ok(Value::Array(data), n, false)
        }
        Err(e) => storage_err(e),
    }
}

/// `POST /api/transform`: OTLP JSON in, Jaeger JSON out, nothing stored.
async fn transform(State(st): State<ApiState>, body: Bytes) -> Response {
    let mut decoded = waymark_otlp::Collected::default();
    if let Err(e) = waymark_otlp::decode_json(&body, &mut decoded) {
        return err(
            StatusCode::BAD_REQUEST,
            format!("request body is not valid OTLP JSON: {e}"),
        );
    }
    if let Some(first) = decoded.invalid.first() {
        return err(
            StatusCode::BAD_REQUEST,
            format!(
                "{} of the spans are not valid: {first}",
                decoded.invalid.len()
            ),
        );
    }
    let mut by_trace: Vec<(TraceId, Vec<waymark_model::Span>)> = Vec::new();
    for s in decoded.spans {
        match by_trace.iter_mut().find(|(id, _)| *id == s.trace_id) {
            Some((_, v)) => v.push(s),
            None => by_trace.push((s.trace_id, vec![s])),
        }
    }
    let data: Vec<Value> = by_trace
        .into_iter()
        .map(|(trace_id, spans)| {
            let t = st
                .query
                .adjust(waymark_model::Trace { trace_id, spans }, false);
            jaeger_json::trace(&t)
        })
        .collect();
    let n = data.len();
    ok(Value::Array(data), n, false)
}

async fn archive(Path(_id): Path<String>) -> Response {
    err(
        StatusCode::NOT_IMPLEMENTED,
        "archive storage is not configured: every stored trace is kept for the retention period",
    )
}

async fn archived(Path(_id): Path<String>) -> Response {
    err(StatusCode::NOT_FOUND, "archive storage is not configured")
}
