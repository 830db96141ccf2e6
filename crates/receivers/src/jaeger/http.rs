//! Jaeger's collector HTTP endpoint: `POST /api/traces` with a Thrift
//! `Batch` body, answered with 202 like Jaeger.

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::thrift::Protocol;
use super::{PROTO_HTTP, decode_http_batch};
use crate::body::{media_type, text};
use crate::{Receiver, ReceiverContext, wait_shutdown};

pub struct JaegerHttpReceiver {
    pub listener: TcpListener,
    pub ctx: ReceiverContext,
    /// More routes served on the same port (the sampling endpoint).
    pub extra: Option<Router>,
}

pub fn router(ctx: ReceiverContext) -> Router {
    Router::new()
        .route("/api/traces", post(traces))
        .with_state(ctx)
}

async fn traces(State(ctx): State<ReceiverContext>, headers: HeaderMap, body: Body) -> Response {
    let mime = media_type(&headers).unwrap_or_default();
    let protocol = match mime.as_str() {
        "application/x-thrift" | "application/vnd.apache.thrift.binary" => Protocol::Binary,
        "application/vnd.apache.thrift.compact" => Protocol::Compact,
        other => {
            return text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "unsupported content type {other:?}: send application/x-thrift or application/vnd.apache.thrift.binary"
                ),
            );
        }
    };
    let bytes = match crate::body::read_body(&headers, body, ctx.limits.max_request_bytes).await {
        Ok(b) => b,
        Err(e) => return text(e.status(), e.to_string()),
    };
    let metrics = ctx.pipeline.metrics();
    let decoded = match decode_http_batch(&bytes, protocol, &ctx.limits) {
        Ok(d) => d,
        Err(e) => {
            metrics.count_malformed(PROTO_HTTP);
            return text(StatusCode::BAD_REQUEST, e.to_string());
        }
    };
    metrics.count_received(PROTO_HTTP, decoded.spans.len() + decoded.rejected);
    metrics.count_rejected(PROTO_HTTP, decoded.rejected);
    let message = decoded.error_message();
    if let Err(e) = ctx.pipeline.submit(PROTO_HTTP, decoded.spans).await {
        return text(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
    }
    if message.is_empty() {
        StatusCode::ACCEPTED.into_response()
    } else {
        text(StatusCode::ACCEPTED, message)
    }
}

#[async_trait]
impl Receiver for JaegerHttpReceiver {
    fn name(&self) -> &'static str {
        PROTO_HTTP
    }

    async fn run(self: Box<Self>, shutdown: watch::Receiver<bool>) -> std::io::Result<()> {
        let mut app = router(self.ctx);
        if let Some(extra) = self.extra {
            app = app.merge(extra);
        }
        axum::serve(self.listener, app)
            .with_graceful_shutdown(wait_shutdown(shutdown))
            .await
    }
}
