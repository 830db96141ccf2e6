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

use waymark_edge::body::{media_type, read_body};

use super::{PROTO_HTTP, decode_http_batch};
use crate::thrift::Protocol;
use crate::{IngestError, Receiver, ReceiverContext, wait_shutdown};

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
            let e = IngestError::UnsupportedMedia(format!(
                "unsupported content type {other:?}: send application/x-thrift or application/vnd.apache.thrift.binary"
            ));
            return ctx.ingest(PROTO_HTTP, Err(e)).await.unwrap_err().text();
        }
    };
    let decoded = read_body(&headers, body, ctx.limits.max_request_bytes)
        .await
        .map_err(IngestError::from)
        .and_then(|bytes| decode_http_batch(&bytes, protocol, &ctx.limits).map_err(Into::into));
    match ctx.ingest(PROTO_HTTP, decoded).await {
        Ok(a) if a.message.is_empty() => StatusCode::ACCEPTED.into_response(),
        // No partial-success answer in this API: the valid spans are
        // stored and the text says what was dropped.
        Ok(a) => (StatusCode::ACCEPTED, a.message).into_response(),
        Err(e) => e.text(),
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
