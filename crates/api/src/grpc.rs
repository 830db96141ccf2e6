//! Jaeger's gRPC query APIs on 16685: `jaeger.api_v2.QueryService` (spans
//! in Jaeger's proto model, rendered with the same tags as the Jaeger JSON)
//! and `jaeger.api_v3.QueryService` (OTLP `TracesData`), so tools that read
//! Jaeger over gRPC work against Waymark.

use std::pin::Pin;

use futures::Stream;
use tonic::{Request, Response, Status};
use waymark_model::{AnyValue, KeyValue, Span, SpanKind, TraceId};
use waymark_proto::jaeger::{api_v2 as v2, api_v3 as v3};
use waymark_query::{AdjustedTrace, QueryService};
use waymark_storage::{StorageError, TraceQuery};

use crate::jaeger::{DEFAULT_LIMIT, MAX_LIMIT};
use crate::jaeger_json::{jaeger_tags, log_fields, process_tags};

type Stream2<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Both query services over one [`QueryService`].
#[derive(Clone)]
pub struct GrpcQuery {
    pub query: QueryService,
}

impl GrpcQuery {
    /// Dependencies between `start` and `end` (default: the last day).
    async fn links(
        &self,
        start: &Option<prost_types::Timestamp>,
        end: &Option<prost_types::Timestamp>,
    ) -> Result<Vec<waymark_storage::DependencyLink>, Status> {
        let end = ts_ns(end).unwrap_or_else(crate::now_ns);
        let start = ts_ns(start).unwrap_or(end.saturating_sub(86_400_000_000_000));
        self.query
            .dependencies(end, end.saturating_sub(start))
            .await
            .map_err(internal)
    }
}

fn internal(e: StorageError) -> Status {
    crate::storage_failure(&e).grpc_status(e.to_string())
}

fn ts(ns: u64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: (ns / 1_000_000_000) as i64,
        nanos: (ns % 1_000_000_000) as i32,
    }
}

fn ts_ns(t: &Option<prost_types::Timestamp>) -> Option<u64> {
    t.as_ref()
        .map(|t| (t.seconds.max(0) as u64).saturating_mul(1_000_000_000) + t.nanos.max(0) as u64)
}

fn dur_ns(d: &Option<prost_types::Duration>) -> Option<u64> {
    d.as_ref()
        .map(|d| (d.seconds.max(0) as u64).saturating_mul(1_000_000_000) + d.nanos.max(0) as u64)
        .filter(|n| *n > 0)
}

fn kv(k: &KeyValue) -> v2::KeyValue {
    let mut out = v2::KeyValue {
        key: k.key.clone(),
        ..Default::default()
    };
    match &k.value {
        AnyValue::String(s) => out.v_str = s.clone(),
        AnyValue::Bool(b) => {
            out.v_type = v2::ValueType::Bool as i32;
            out.v_bool = *b;
        }
        AnyValue::Int(i) => {
            out.v_type = v2::ValueType::Int64 as i32;
            out.v_int64 = *i;
        }
        AnyValue::Double(d) => {
            out.v_type = v2::ValueType::Float64 as i32;
            out.v_float64 = *d;
        }
        AnyValue::Bytes(b) => {
            out.v_type = v2::ValueType::Binary as i32;
            out.v_binary = b.clone();
        }
        other => out.v_str = other.to_tag_string(),
    }
    out
}

/// A span in Jaeger's api_v2 proto model.
pub fn span_v2(s: &Span, warnings: &[String]) -> v2::Span {
    let mut refs = Vec::new();
    if let Some(p) = s.parent_span_id {
        refs.push(v2::SpanRef {
            trace_id: s.trace_id.0.to_vec(),
            span_id: p.0.to_vec(),
            ref_type: v2::SpanRefType::ChildOf as i32,
        });
    }
    for l in &s.links {
        refs.push(v2::SpanRef {
            trace_id: l.trace_id.0.to_vec(),
            span_id: l.span_id.0.to_vec(),
            ref_type: v2::SpanRefType::FollowsFrom as i32,
        });
    }
    let d = s.duration_nanos();
    v2::Span {
        trace_id: s.trace_id.0.to_vec(),
        span_id: s.span_id.0.to_vec(),
        operation_name: s.name.clone(),
        references: refs,
        flags: s.flags & 0xff,
        start_time: Some(ts(s.start_time_unix_nano)),
        duration: Some(prost_types::Duration {
            seconds: (d / 1_000_000_000) as i64,
            nanos: (d % 1_000_000_000) as i32,
        }),
        tags: jaeger_tags(s).iter().map(kv).collect(),
        logs: s
            .events
            .iter()
            .map(|e| v2::Log {
                timestamp: Some(ts(e.time_unix_nano)),
                fields: log_fields(e).iter().map(kv).collect(),
            })
            .collect(),
        process: Some(v2::Process {
            service_name: s.service_name().to_string(),
            tags: process_tags(&s.resource).map(kv).collect(),
        }),
        process_id: String::new(),
        warnings: warnings.to_vec(),
    }
}

fn chunk(t: &AdjustedTrace) -> v2::SpansResponseChunk {
    v2::SpansResponseChunk {
        spans: t
            .trace
            .spans
            .iter()
            .map(|s| {
                span_v2(
                    s,
                    t.warnings.get(&s.span_id).map(Vec::as_slice).unwrap_or(&[]),
                )
            })
            .collect(),
    }
}

fn trace_id_bytes(b: &[u8]) -> Result<TraceId, Status> {
    if b.len() > 16 {
        return Err(Status::invalid_argument(format!(
            "trace_id must be at most 16 bytes, got {}",
            b.len()
        )));
    }
    let mut id = [0u8; 16];
    id[16 - b.len()..].copy_from_slice(b);
    TraceId::from_bytes(&id).map_err(|e| Status::invalid_argument(format!("trace_id: {e}")))
}

#[allow(clippy::too_many_arguments)]
fn query(
    service: String,
    operation: String,
    tags: impl IntoIterator<Item = (String, String)>,
    min: &Option<prost_types::Timestamp>,
    max: &Option<prost_types::Timestamp>,
    dmin: &Option<prost_types::Duration>,
    dmax: &Option<prost_types::Duration>,
    depth: i32,
) -> Result<TraceQuery, Status> {
    let (Some(start_min), Some(start_max)) = (ts_ns(min), ts_ns(max)) else {
        return Err(Status::invalid_argument(
            "start_time_min and start_time_max are required",
        ));
    };
    if start_min > start_max {
        return Err(Status::invalid_argument(
            "start_time_min must not be after start_time_max",
        ));
    }
    let mut tags: Vec<(String, String)> = tags.into_iter().collect();
    tags.sort();
    Ok(TraceQuery {
        service: (!service.is_empty()).then_some(service),
        operation: (!operation.is_empty()).then_some(operation),
        span_kind: None,
        tags,
        start_min,
        start_max,
        duration_min: dur_ns(dmin),
        duration_max: dur_ns(dmax),
        limit: if depth <= 0 {
            DEFAULT_LIMIT
        } else {
            (depth as usize).min(MAX_LIMIT)
        },
    })
}

fn kind(s: &str) -> Result<Option<SpanKind>, Status> {
    if s.is_empty() {
        return Ok(None);
    }
    SpanKind::from_jaeger_name(s)
        .map(Some)
        .ok_or_else(|| Status::invalid_argument(format!("unsupported span_kind {s:?}")))
}

#[tonic::async_trait]
impl v2::query_service_server::QueryService for GrpcQuery {
    type GetTraceStream = Stream2<v2::SpansResponseChunk>;
    type FindTracesStream = Stream2<v2::SpansResponseChunk>;

    async fn get_trace(
        &self,
        request: Request<v2::GetTraceRequest>,
    ) -> Result<Response<Self::GetTraceStream>, Status> {
        let r = request.into_inner();
        let id = trace_id_bytes(&r.trace_id)?;
        match self
            .query
            .get_trace(id, r.raw_traces)
            .await
            .map_err(internal)?
        {
            Some(t) => Ok(Response::new(Box::pin(futures::stream::iter([Ok(chunk(
                &t,
            ))])))),
            None => Err(Status::not_found("trace not found")),
        }
    }

    async fn archive_trace(
        &self,
        _request: Request<v2::ArchiveTraceRequest>,
    ) -> Result<Response<v2::ArchiveTraceResponse>, Status> {
        Err(Status::unimplemented("archive storage is not configured"))
    }

    async fn find_traces(
        &self,
        request: Request<v2::FindTracesRequest>,
    ) -> Result<Response<Self::FindTracesStream>, Status> {
        let q = request
            .into_inner()
            .query
            .ok_or_else(|| Status::invalid_argument("query is required"))?;
        if q.service_name.is_empty() {
            return Err(Status::invalid_argument("service_name is required"));
        }
        let raw = q.raw_traces;
        let tq = query(
            q.service_name,
            q.operation_name,
            q.tags,
            &q.start_time_min,
            &q.start_time_max,
            &q.duration_min,
            &q.duration_max,
            q.search_depth,
        )?;
        let traces = self.query.find_traces(&tq, raw).await.map_err(internal)?;
        let chunks: Vec<_> = traces.iter().map(|t| Ok(chunk(t))).collect();
        Ok(Response::new(Box::pin(futures::stream::iter(chunks))))
    }

    async fn get_services(
        &self,
        _request: Request<v2::GetServicesRequest>,
    ) -> Result<Response<v2::GetServicesResponse>, Status> {
        let services = self.query.services().await.map_err(internal)?;
        Ok(Response::new(v2::GetServicesResponse { services }))
    }

    async fn get_operations(
        &self,
        request: Request<v2::GetOperationsRequest>,
    ) -> Result<Response<v2::GetOperationsResponse>, Status> {
        let r = request.into_inner();
        if r.service.is_empty() {
            return Err(Status::invalid_argument("service is required"));
        }
        let ops = self
            .query
            .operations(&r.service, kind(&r.span_kind)?)
            .await
            .map_err(internal)?;
        let mut names: Vec<String> = ops.iter().map(|o| o.name.clone()).collect();
        names.dedup();
        Ok(Response::new(v2::GetOperationsResponse {
            operation_names: names,
            operations: ops
                .into_iter()
                .map(|o| v2::Operation {
                    name: o.name,
                    span_kind: o.kind.jaeger_name().to_string(),
                })
                .collect(),
        }))
    }

    async fn get_dependencies(
        &self,
        request: Request<v2::GetDependenciesRequest>,
    ) -> Result<Response<v2::GetDependenciesResponse>, Status> {
        let r = request.into_inner();
        let links = self.links(&r.start_time, &r.end_time).await?;
        Ok(Response::new(v2::GetDependenciesResponse {
            dependencies: links
                .into_iter()
                .map(|l| v2::DependencyLink {
                    parent: l.parent,
                    child: l.child,
                    call_count: l.call_count,
                    source: String::new(),
                })
                .collect(),
        }))
    }
}

fn traces_data(traces: &[AdjustedTrace]) -> waymark_proto::otlp::trace::TracesData {
    let spans: Vec<Span> = traces
        .iter()
        .flat_map(|t| t.trace.spans.iter().cloned())
        .collect();
    waymark_proto::otlp::trace::TracesData {
        resource_spans: waymark_otlp::to_request(&spans).resource_spans,
    }
}

fn v3_query(q: Option<v3::TraceQueryParameters>) -> Result<(TraceQuery, bool), Status> {
    let q = q.ok_or_else(|| Status::invalid_argument("query is required"))?;
    let raw = q.raw_traces;
    Ok((
        query(
            q.service_name,
            q.operation_name,
            q.attributes,
            &q.start_time_min,
            &q.start_time_max,
            &q.duration_min,
            &q.duration_max,
            q.search_depth,
        )?,
        raw,
    ))
}

#[tonic::async_trait]
impl v3::query_service_server::QueryService for GrpcQuery {
    type GetTraceStream = Stream2<waymark_proto::otlp::trace::TracesData>;
    type FindTracesStream = Stream2<waymark_proto::otlp::trace::TracesData>;
    type FindTraceSummariesStream = Stream2<v3::FindTraceSummariesResponse>;

    async fn get_trace(
        &self,
        request: Request<v3::GetTraceRequest>,
    ) -> Result<Response<Self::GetTraceStream>, Status> {
        let r = request.into_inner();
        let id = TraceId::from_hex(&r.trace_id).map_err(|e| {
            Status::invalid_argument(format!("malformed trace_id {:?}: {e}", r.trace_id))
        })?;
        match self
            .query
            .get_trace(id, r.raw_traces)
            .await
            .map_err(internal)?
        {
            Some(t) => Ok(Response::new(Box::pin(futures::stream::iter([Ok(
                traces_data(std::slice::from_ref(&t)),
            )])))),
            None => Err(Status::not_found("trace not found")),
        }
    }

    async fn find_traces(
        &self,
        request: Request<v3::FindTracesRequest>,
    ) -> Result<Response<Self::FindTracesStream>, Status> {
        let (tq, raw) = v3_query(request.into_inner().query)?;
        let traces = self.query.find_traces(&tq, raw).await.map_err(internal)?;
        let out: Vec<_> = if traces.is_empty() {
            Vec::new()
        } else {
            vec![Ok(traces_data(&traces))]
        };
        Ok(Response::new(Box::pin(futures::stream::iter(out))))
    }

    async fn get_services(
        &self,
        _request: Request<v3::GetServicesRequest>,
    ) -> Result<Response<v3::GetServicesResponse>, Status> {
        let services = self.query.services().await.map_err(internal)?;
        Ok(Response::new(v3::GetServicesResponse { services }))
    }

    async fn get_operations(
        &self,
        request: Request<v3::GetOperationsRequest>,
    ) -> Result<Response<v3::GetOperationsResponse>, Status> {
        let r = request.into_inner();
        if r.service.is_empty() {
            return Err(Status::invalid_argument("service is required"));
        }
        let ops = self
            .query
            .operations(&r.service, kind(&r.span_kind)?)
            .await
            .map_err(internal)?;
        Ok(Response::new(v3::GetOperationsResponse {
            operations: ops
                .into_iter()
                .map(|o| v3::Operation {
                    name: o.name,
                    span_kind: match o.kind {
                        SpanKind::Unspecified => "internal".into(),
                        k => k.jaeger_name().into(),
                    },
                })
                .collect(),
        }))
    }

    async fn get_dependencies(
        &self,
        request: Request<v3::GetDependenciesRequest>,
    ) -> Result<Response<v3::DependenciesResponse>, Status> {
        let r = request.into_inner();
        let links = self.links(&r.start_time, &r.end_time).await?;
        Ok(Response::new(v3::DependenciesResponse {
            dependencies: links
                .into_iter()
                .map(|l| v3::Dependency {
                    parent: l.parent,
                    child: l.child,
                    call_count: l.call_count,
                })
                .collect(),
        }))
    }

    async fn find_trace_summaries(
        &self,
        request: Request<v3::FindTraceSummariesRequest>,
    ) -> Result<Response<Self::FindTraceSummariesStream>, Status> {
        let (tq, _) = v3_query(request.into_inner().query)?;
        let traces = self.query.find_traces(&tq, false).await.map_err(internal)?;
        let summaries = traces
            .iter()
            .map(|t| {
                let d = crate::v3::summary_data(t);
                let (root_service_name, root_operation_name) = d.root.unwrap_or_default();
                v3::TraceSummary {
                    trace_id: d.trace_id,
                    root_service_name,
                    root_operation_name,
                    min_start_time_unix_nano: d.min_start,
                    max_end_time_unix_nano: d.max_end,
                    span_count: d.span_count as i32,
                    error_span_count: d.error_count as i32,
                    orphan_span_count: d.orphan_count as i32,
                    services: d
                        .services
                        .into_iter()
                        .map(|(name, n, e)| v3::ServiceSummary {
                            name,
                            span_count: n as i32,
                            error_span_count: e as i32,
                        })
                        .collect(),
                }
            })
            .collect();
        Ok(Response::new(Box::pin(futures::stream::iter([Ok(
            v3::FindTraceSummariesResponse { summaries },
        )]))))
    }
}

/// Both services as gRPC routes.
pub fn routes(query: QueryService) -> tonic::service::Routes {
    let svc = GrpcQuery { query };
    tonic::service::Routes::new(v2::query_service_server::QueryServiceServer::new(
        svc.clone(),
    ))
    .add_service(v3::query_service_server::QueryServiceServer::new(svc))
}
