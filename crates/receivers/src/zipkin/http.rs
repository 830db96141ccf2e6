//! Zipkin's HTTP collector API on 9411: `POST /api/v2/spans` (JSON or
//! protobuf) and `POST /api/v1/spans` (JSON), answering 202 like Zipkin.

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

use super::{PROTO_ZIPKIN, ZipkinError};
use crate::{Decoded, IngestError, Receiver, ReceiverContext, wait_shutdown};

/// The Zipkin receiver.
pub struct ZipkinReceiver {
    pub listener: TcpListener,
    pub ctx: ReceiverContext,
}

pub fn router(ctx: ReceiverContext) -> Router {
    Router::new()
        .route("/api/v2/spans", post(v2))
        .route("/api/v1/spans", post(v1))
        .with_state(ctx)
}

/// Zipkin clients that send no content type mean JSON.
fn mime(headers: &HeaderMap) -> String {
    media_type(headers).unwrap_or_else(|| "application/json".into())
}

async fn ingest(
    ctx: &ReceiverContext,
    headers: &HeaderMap,
    body: Body,
    decode: impl FnOnce(&[u8]) -> Result<Decoded, ZipkinError>,
) -> Response {
    let decoded = read_body(headers, body, ctx.limits.max_request_bytes)
        .await
        .map_err(IngestError::from)
        .and_then(|bytes| decode(&bytes).map_err(Into::into));
    match ctx.ingest(PROTO_ZIPKIN, decoded).await {
        Ok(a) if a.message.is_empty() => StatusCode::ACCEPTED.into_response(),
        // Zipkin has no partial-success answer; the valid spans are stored
        // and the text says what was dropped.
        Ok(a) => (StatusCode::ACCEPTED, a.message).into_response(),
        Err(e) => e.text(),
    }
}

async fn unsupported(ctx: &ReceiverContext, message: String) -> Response {
    let e = IngestError::UnsupportedMedia(message);
    ctx.ingest(PROTO_ZIPKIN, Err(e)).await.unwrap_err().text()
}

async fn v2(State(ctx): State<ReceiverContext>, headers: HeaderMap, body: Body) -> Response {
    let limits = ctx.limits.clone();
    match mime(&headers).as_str() {
        "application/json" | "" => {
            ingest(&ctx, &headers, body, |b| {
                super::json::decode_v2_json(b, &limits)
            })
            .await
        }
        "application/x-protobuf" | "application/protobuf" => {
            ingest(&ctx, &headers, body, |b| {
                super::proto::decode_v2_proto(b, &limits)
            })
            .await
        }
        other => {
            unsupported(&ctx, format!(
                "unsupported content type {other:?} for /api/v2/spans: send application/json or application/x-protobuf"
            ))
            .await
        }
    }
}

async fn v1(State(ctx): State<ReceiverContext>, headers: HeaderMap, body: Body) -> Response {
    let limits = ctx.limits.clone();
    match mime(&headers).as_str() {
        "application/json" | "" => {
            ingest(&ctx, &headers, body, |b| {
                super::v1::decode_v1_json(b, &limits)
            })
            .await
        }
        "application/x-thrift" | "application/vnd.apache.thrift.binary" => {
            ingest(&ctx, &headers, body, |b| {
                super::v1::decode_v1_thrift(b, &limits)
            })
            .await
        }
        other => {
            unsupported(&ctx, format!(
                "unsupported content type {other:?} for /api/v1/spans: send application/json or application/x-thrift"
            ))
            .await
        }
    }
}

#[async_trait]
impl Receiver for ZipkinReceiver {
    fn name(&self) -> &'static str {
        PROTO_ZIPKIN
    }

    async fn run(self: Box<Self>, shutdown: watch::Receiver<bool>) -> std::io::Result<()> {
        axum::serve(self.listener, router(self.ctx))
            .with_graceful_shutdown(wait_shutdown(shutdown))
            .await
    }
}
