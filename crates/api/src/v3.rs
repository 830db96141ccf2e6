//! The api_v3 HTTP gateway (`/api/v3/...`): services, operations, traces as
//! OTLP JSON, and trace summaries for Jaeger UI's search. Errors are
//! `{"error":{"httpCode","message"}}`. Both spellings of each parameter
//! (`query.service_name` and `query.serviceName`) are accepted.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use waymark_model::{SpanKind, StatusCode as SpanStatus};
use waymark_otlp::spans_to_otlp_json;
use waymark_query::AdjustedTrace;
use waymark_storage::{StorageError, TraceQuery};

use crate::ApiState;
use crate::jaeger::{DEFAULT_LIMIT, MAX_LIMIT, parse_trace_id};
use crate::params::{ParamError, Params, parse_go_duration, parse_rfc3339};

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v3/services", get(services))
        .route("/api/v3/operations", get(operations))
        .route("/api/v3/traces", get(find_traces))
        .route("/api/v3/traces/{id}", get(get_trace))
        .route("/api/v3/trace-summaries", get(trace_summaries))
}

pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = json!({"error": {"httpCode": status.as_u16(), "message": message.into()}});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn ok(body: Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn storage_err(e: StorageError) -> Response {
    let failure = crate::storage_failure(&e);
    let mut r = error(failure.answer().http, e.to_string());
    failure.add_retry_after(&mut r);
    r
}

async fn services(State(st): State<ApiState>) -> Response {
    match st.query.services().await {
        Ok(s) => ok(json!({ "services": s })),
        Err(e) => storage_err(e),
    }
}

async fn operations(State(st): State<ApiState>, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q.as_deref());
    let Some(service) = p.get(&["service", "query.service_name", "query.serviceName"]) else {
        return error(StatusCode::BAD_REQUEST, "parameter 'service' is required");
    };
    let kind = match p.get(&["span_kind", "spanKind"]) {
        None => None,
        Some(k) => match SpanKind::from_jaeger_name(k) {
            Some(k) => Some(k),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("unsupported span_kind {k:?}"),
                );
            }
        },
    };
    match st.query.operations(service, kind).await {
        // api_v3 reports an unspecified kind as internal, as OTel treats it.
        Ok(ops) => ok(json!({"operations": ops
            .iter()
            .map(|o| {
                let kind = match o.kind {
                    SpanKind::Unspecified => "internal",
                    k => k.jaeger_name(),
                };
                json!({"name": o.name, "spanKind": kind})
            })
            .collect::<Vec<_>>()})),
        Err(e) => storage_err(e),
    }
}

fn traces_result(traces: &[AdjustedTrace]) -> Value {
    let spans: Vec<_> = traces
        .iter()
        .flat_map(|t| t.trace.spans.iter().cloned())
        .collect();
    json!({ "result": spans_to_otlp_json(&spans) })
}

async fn get_trace(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let p = Params::parse(q.as_deref());
    let raw = p.get(&["raw_traces", "rawTraces"]) == Some("true");
    let id = match parse_trace_id(&id) {
        Ok(id) => id,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match st.query.get_trace(id, raw).await {
        Ok(Some(t)) => ok(traces_result(std::slice::from_ref(&t))),
        Ok(None) => error(StatusCode::NOT_FOUND, "trace not found"),
        Err(e) => storage_err(e),
    }
}

/// Parses `query.*` parameters (snake_case or camelCase).
pub fn parse_query(p: &Params) -> Result<TraceQuery, ParamError> {
    let time = |names: &[&str]| -> Result<Option<u64>, ParamError> {
        match p.get(names) {
            None => Ok(None),
            Some(v) => parse_rfc3339(v)
                .map(Some)
                .map_err(|e| ParamError(format!("unable to parse param '{}': {e}", names[0]))),
        }
    };
    let dur = |names: &[&str]| -> Result<Option<u64>, ParamError> {
        match p.get(names) {
            None => Ok(None),
            Some(v) => parse_go_duration(v)
                .map(Some)
                .map_err(|e| ParamError(format!("unable to parse param '{}': {e}", names[0]))),
        }
    };
    let service = p
        .get(&["query.serviceName", "query.service_name"])
        .map(str::to_string);
    let start_min = time(&["query.startTimeMin", "query.start_time_min"])?;
    let start_max = time(&["query.startTimeMax", "query.start_time_max"])?;
    let (Some(start_min), Some(start_max)) = (start_min, start_max) else {
        return Err(ParamError(
            "query.startTimeMin and query.startTimeMax are required".into(),
        ));
    };
    if start_min >= start_max {
        return Err(ParamError(
            "query.startTimeMin must be before query.startTimeMax".into(),
        ));
    }
    let mut tags = Vec::new();
    if let Some(raw) = p.get(&["query.attributes"]) {
        let v: Value = serde_json::from_str(raw).map_err(|e| {
            ParamError(format!(
                "unable to parse param 'query.attributes': not valid JSON: {e}"
            ))
        })?;
        let Value::Object(m) = v else {
            return Err(ParamError(
                "unable to parse param 'query.attributes': expected a JSON object".into(),
            ));
        };
        for (k, v) in m {
            tags.push((
                k,
                match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                },
            ));
        }
    }
    let limit = match p.int::<i64>(&[
        "query.searchDepth",
        "query.search_depth",
        "query.num_traces",
    ])? {
        None | Some(0) => DEFAULT_LIMIT,
        Some(n) if n < 0 => {
            return Err(ParamError(
                "unable to parse param 'query.search_depth': must not be negative".into(),
            ));
        }
        Some(n) => (n as usize).min(MAX_LIMIT),
    };
    Ok(TraceQuery {
        service,
        operation: p
            .get(&["query.operationName", "query.operation_name"])
            .map(str::to_string),
        span_kind: None,
        tags,
        start_min,
        start_max,
        duration_min: dur(&["query.durationMin", "query.duration_min"])?,
        duration_max: dur(&["query.durationMax", "query.duration_max"])?,
        limit,
    })
}

async fn find_traces(State(st): State<ApiState>, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q.as_deref());
    let query = match parse_query(&p) {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.0),
    };
    let raw = p.get(&["query.rawTraces", "query.raw_traces"]) == Some("true");
    match st.query.find_traces(&query, raw).await {
        Ok(t) if t.is_empty() => error(StatusCode::NOT_FOUND, "No traces found"),
        Ok(t) => ok(traces_result(&t)),
        Err(e) => storage_err(e),
    }
}

/// What a trace summary holds, rendered as JSON here and as protobuf by
/// the gRPC api_v3.
pub struct SummaryData {
    pub trace_id: String,
    pub root: Option<(String, String)>,
    pub min_start: u64,
    pub max_end: u64,
    pub span_count: u64,
    pub error_count: u64,
    pub orphan_count: u64,
    /// (service, spans, error spans), sorted by service
    pub services: Vec<(String, u64, u64)>,
}

/// Computes a trace's summary. The root is the span without a parent (the
/// earliest if several); orphans are spans whose parent is not in the trace.
pub fn summary_data(t: &AdjustedTrace) -> SummaryData {
    let spans = &t.trace.spans;
    let start = spans
        .iter()
        .map(|s| s.start_time_unix_nano)
        .min()
        .unwrap_or(0);
    let end = spans
        .iter()
        .map(|s| s.end_time_unix_nano)
        .max()
        .unwrap_or(start);
    let ids: std::collections::HashSet<_> = spans.iter().map(|s| s.span_id).collect();
    let root = spans
        .iter()
        .filter(|s| s.parent_span_id.is_none())
        .min_by_key(|s| (s.start_time_unix_nano, s.span_id))
        .or_else(|| {
            spans
                .iter()
                .min_by_key(|s| (s.start_time_unix_nano, s.span_id))
        });
    let orphans = spans
        .iter()
        .filter(|s| s.parent_span_id.is_some_and(|p| !ids.contains(&p)))
        .count() as u64;
    let mut services: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for s in spans {
        let e = services.entry(s.service_name()).or_default();
        e.0 += 1;
        if s.status.code == SpanStatus::Error {
            e.1 += 1;
        }
    }
    SummaryData {
        trace_id: t.trace.trace_id.to_hex(),
        root: root.map(|r| (r.service_name().to_string(), r.name.clone())),
        min_start: start,
        max_end: end,
        span_count: spans.len() as u64,
        error_count: services.values().map(|v| v.1).sum(),
        orphan_count: orphans,
        services: services
            .into_iter()
            .map(|(n, (c, e))| (n.to_string(), c, e))
            .collect(),
    }
}

/// One search result without its spans: what Jaeger UI >= 2.19 lists.
/// Zero counts are left out, as proto3 JSON does; times are decimal ns
/// strings and `traceId` is always 32 hex digits.
pub fn summary(t: &AdjustedTrace) -> Value {
    let d = summary_data(t);
    let mut m = serde_json::Map::new();
    m.insert("traceId".into(), json!(d.trace_id));
    if let Some((service, op)) = &d.root {
        m.insert("rootServiceName".into(), json!(service));
        m.insert("rootOperationName".into(), json!(op));
    }
    m.insert(
        "minStartTimeUnixNano".into(),
        json!(d.min_start.to_string()),
    );
    m.insert("maxEndTimeUnixNano".into(), json!(d.max_end.to_string()));
    m.insert("spanCount".into(), json!(d.span_count));
    if d.error_count > 0 {
        m.insert("errorSpanCount".into(), json!(d.error_count));
    }
    if d.orphan_count > 0 {
        m.insert("orphanSpanCount".into(), json!(d.orphan_count));
    }
    let services: Vec<Value> = d
        .services
        .iter()
        .map(|(name, n, e)| {
            let mut s = json!({"name": name, "spanCount": n});
            if *e > 0 {
                s["errorSpanCount"] = json!(e);
            }
            s
        })
        .collect();
    m.insert("services".into(), Value::Array(services));
    Value::Object(m)
}

async fn trace_summaries(State(st): State<ApiState>, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q.as_deref());
    let query = match parse_query(&p) {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.0),
    };
    match st.query.find_traces(&query, false).await {
        Ok(t) => ok(json!({"summaries": t.iter().map(summary).collect::<Vec<_>>()})),
        Err(e) => storage_err(e),
    }
}
