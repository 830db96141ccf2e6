//! Jaeger's collector gRPC endpoint (14250): `jaeger.api_v2.CollectorService/
//! PostSpans` with an api_v2 `Batch`, mapped through the same Jaeger span
//! mapping as the Thrift receivers. The sampling service on the same port is
//! added by the server.

use tonic::{Request, Response, Status};
use waymark_model::{AnyValue, KeyValue};
use waymark_proto::jaeger::api_v2 as pb;
use waymark_proto::jaeger::api_v2::collector_service_server::CollectorService;

use super::JaegerError;
use super::batch::{JaegerProcess, JaegerSpan, to_model};
use crate::{Decoded, IngestError, ReceiverContext};

/// Metric label.
pub const PROTO_GRPC: &str = "jaeger_grpc";

/// The `CollectorService` implementation; wrap it in
/// `collector_service_server::CollectorServiceServer`.
pub struct JaegerCollector {
    pub ctx: ReceiverContext,
}

fn kv(k: pb::KeyValue) -> KeyValue {
    let value = match pb::ValueType::try_from(k.v_type).unwrap_or(pb::ValueType::String) {
        pb::ValueType::String => AnyValue::String(k.v_str),
        pb::ValueType::Bool => AnyValue::Bool(k.v_bool),
        pb::ValueType::Int64 => AnyValue::Int(k.v_int64),
        pb::ValueType::Float64 => AnyValue::Double(k.v_float64),
        pb::ValueType::Binary => AnyValue::Bytes(k.v_binary),
    };
    KeyValue { key: k.key, value }
}

fn process(p: pb::Process) -> JaegerProcess {
    JaegerProcess {
        service_name: p.service_name,
        tags: p.tags.into_iter().map(kv).collect(),
    }
}

fn trace_id(b: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    if b.len() <= 16 {
        out[16 - b.len()..].copy_from_slice(b);
    }
    out
}

fn span_id(b: &[u8]) -> u64 {
    let mut out = [0u8; 8];
    if b.len() <= 8 {
        out[8 - b.len()..].copy_from_slice(b);
    }
    u64::from_be_bytes(out)
}

/// Seconds and nanoseconds (a protobuf `Timestamp` or `Duration`) as
/// nanoseconds, negatives as 0, saturating at the end of time.
fn nanos(seconds: i64, nanos: i32) -> u64 {
    (seconds.max(0) as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(nanos.max(0) as u64)
}

fn ts_ns(t: Option<prost_types::Timestamp>) -> u64 {
    t.map_or(0, |t| nanos(t.seconds, t.nanos))
}

fn dur_ns(d: Option<prost_types::Duration>) -> u64 {
    d.map_or(0, |d| nanos(d.seconds, d.nanos))
}

/// Converts a `PostSpansRequest` batch (pure; used by tests too).
pub fn decode_batch(batch: pb::Batch, limits: &crate::Limits) -> Result<Decoded, JaegerError> {
    let batch_process = batch.process.map(process).unwrap_or_default();
    let spans = batch
        .spans
        .into_iter()
        .map(|s| {
            let own = s.process.map(process);
            (
                own,
                JaegerSpan {
                    trace_id: trace_id(&s.trace_id),
                    span_id: span_id(&s.span_id),
                    parent_span_id: 0,
                    references: s
                        .references
                        .into_iter()
                        .map(|r| {
                            (
                                r.ref_type as i64,
                                trace_id(&r.trace_id),
                                span_id(&r.span_id),
                            )
                        })
                        .collect(),
                    operation_name: s.operation_name,
                    flags: s.flags,
                    start_ns: ts_ns(s.start_time),
                    duration_ns: dur_ns(s.duration),
                    tags: s.tags.into_iter().map(kv).collect(),
                    logs: s
                        .logs
                        .into_iter()
                        .map(|l| (ts_ns(l.timestamp), l.fields.into_iter().map(kv).collect()))
                        .collect(),
                },
            )
        })
        .collect();
    to_model(&batch_process, spans, Decoded::new(limits))
}

#[tonic::async_trait]
impl CollectorService for JaegerCollector {
    async fn post_spans(
        &self,
        request: Request<pb::PostSpansRequest>,
    ) -> Result<Response<pb::PostSpansResponse>, Status> {
        let batch = request.into_inner().batch.unwrap_or_default();
        let decoded = decode_batch(batch, &self.ctx.limits).map_err(Into::into);
        let accepted = self
            .ctx
            .ingest(PROTO_GRPC, decoded)
            .await
            .map_err(|e| e.grpc_status())?;
        // api_v2 has no partial-success answer: a batch of which nothing
        // was usable is an invalid request, a partly usable one succeeds.
        if accepted.rejected > 0 && accepted.stored == 0 {
            return Err(IngestError::AllRejected(accepted.message).grpc_status());
        }
        Ok(Response::new(pb::PostSpansResponse {}))
    }
}

/// The gRPC receiver on 14250. `extra` carries more services for the same
/// port (the sampling manager).
pub struct JaegerGrpcReceiver {
    pub listener: tokio::net::TcpListener,
    pub ctx: ReceiverContext,
    pub extra: tonic::service::Routes,
}

#[async_trait::async_trait]
impl crate::Receiver for JaegerGrpcReceiver {
    fn name(&self) -> &'static str {
        PROTO_GRPC
    }

    async fn run(
        self: Box<Self>,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> std::io::Result<()> {
        use tonic::codec::CompressionEncoding;
        use waymark_proto::jaeger::api_v2::collector_service_server::CollectorServiceServer;
        let max = self.ctx.limits.max_request_bytes;
        let svc = CollectorServiceServer::new(JaegerCollector { ctx: self.ctx })
            .accept_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(max);
        let routes = self.extra.add_service(svc);
        let incoming = tonic::transport::server::TcpIncoming::from(self.listener);
        tonic::transport::Server::builder()
            .add_routes(routes)
            .serve_with_incoming_shutdown(incoming, crate::wait_shutdown(shutdown))
            .await
            .map_err(std::io::Error::other)
    }
}

#[cfg(test)]
mod overflow_tests {
    use super::*;

    /// Found by fuzz/jaeger_grpc and the Thrift targets: a start near the
    /// end of time plus a duration overflowed; both now saturate.
    #[test]
    fn times_near_the_end_of_time_saturate() {
        let span = pb::Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            operation_name: "late".into(),
            start_time: Some(prost_types::Timestamp {
                seconds: i64::MAX,
                nanos: 999_999_999,
            }),
            duration: Some(prost_types::Duration {
                seconds: i64::MAX,
                nanos: 999_999_999,
            }),
            ..Default::default()
        };
        let batch = pb::Batch {
            spans: vec![span],
            process: Some(pb::Process {
                service_name: "svc".into(),
                tags: Vec::new(),
            }),
        };
        let d = decode_batch(batch, &crate::Limits::default()).unwrap();
        let s = &d.spans[0];
        assert_eq!(s.start_time_unix_nano, u64::MAX);
        assert_eq!(s.end_time_unix_nano, u64::MAX);
    }
}
