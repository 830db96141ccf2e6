//! OTLP over gRPC: `opentelemetry.proto.collector.trace.v1.TraceService/Export`.

use async_trait::async_trait;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};
use waymark_proto::otlp::collector::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};

use super::{PROTO_GRPC, from_request};
use crate::{Receiver, ReceiverContext, wait_shutdown};

/// The OTLP gRPC receiver.
pub struct OtlpGrpcReceiver {
    pub listener: TcpListener,
    pub ctx: ReceiverContext,
}

struct Service {
    ctx: ReceiverContext,
}

#[tonic::async_trait]
impl TraceService for Service {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let decoded = from_request(request.into_inner(), &self.ctx.limits).map_err(Into::into);
        let accepted = self
            .ctx
            .ingest(PROTO_GRPC, decoded)
            .await
            .map_err(|e| e.grpc_status())?;
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: (accepted.rejected > 0).then_some(ExportTracePartialSuccess {
                rejected_spans: accepted.rejected as i64,
                error_message: accepted.message,
            }),
        }))
    }
}

#[async_trait]
impl Receiver for OtlpGrpcReceiver {
    fn name(&self) -> &'static str {
        PROTO_GRPC
    }

    async fn run(self: Box<Self>, shutdown: watch::Receiver<bool>) -> std::io::Result<()> {
        let max = self.ctx.limits.max_request_bytes;
        let svc = TraceServiceServer::new(Service { ctx: self.ctx })
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(max);
        let incoming = tonic::transport::server::TcpIncoming::from(self.listener);
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming_shutdown(incoming, wait_shutdown(shutdown))
            .await
            .map_err(std::io::Error::other)
    }
}
