//! Receivers: the edge where each wire protocol is decoded into the span
//! model and handed to the pipeline. Decoding is a pure function of bytes
//! (`decode_*`), kept apart from sockets so it can be unit-tested and
//! fuzzed; the socket side only frames requests, enforces size limits and
//! maps outcomes to protocol status codes.
//!
//! Every receiver implements [`Receiver`]; the server registers them in one
//! place. The protocols sit side by side on one core ([`ingest`]): each
//! has its own decode error, and all of them share validation, limits,
//! counting, submission and the mapping of failures to status. The Thrift
//! reader ([`thrift`]) is shared by Jaeger and Zipkin v1. Nothing in this
//! crate touches storage directly.

pub mod ingest;
pub mod jaeger;
pub mod limits;
pub mod otlp;
pub mod thrift;
pub mod zipkin;

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::watch;
use waymark_pipeline::Pipeline;

pub use ingest::{Accepted, Decoded, IngestError, TooManySpans};
pub use limits::Limits;

/// What every receiver gets: where to send spans and which limits apply.
#[derive(Clone)]
pub struct ReceiverContext {
    pub pipeline: Pipeline,
    pub limits: Arc<Limits>,
}

/// A protocol endpoint bound to a socket.
#[async_trait]
pub trait Receiver: Send + 'static {
    /// Short name used in logs and as the `protocol` metric label.
    fn name(&self) -> &'static str;

    /// Serves until `shutdown` turns true.
    async fn run(self: Box<Self>, shutdown: watch::Receiver<bool>) -> std::io::Result<()>;
}

/// The resource with these attributes from `seen`, or a new one added to
/// it, so that spans of one service instance in a request share one
/// `Arc` (and storage writes it once).
pub fn intern_resource(
    seen: &mut Vec<Arc<waymark_model::Resource>>,
    attributes: Vec<waymark_model::KeyValue>,
) -> Arc<waymark_model::Resource> {
    if let Some(r) = seen.iter().find(|r| r.attributes == attributes) {
        return r.clone();
    }
    let r = Arc::new(waymark_model::Resource {
        attributes,
        dropped_attributes_count: 0,
    });
    seen.push(r.clone());
    r
}

/// Resolves when the shutdown flag turns true (or its sender is dropped).
pub async fn wait_shutdown(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}
