//! The span model to and from OTLP, in both of its encodings: protobuf
//! ([`proto`]) and OTLP/JSON ([`json`]).
//!
//! Reading converts every span it can and reports each one it cannot (bad
//! ids, bad hex) through a [`SpanOutput`], so the caller decides what a
//! rejected span means: the OTLP receiver counts it and reports it in
//! `partial_success`, the API's transform endpoint refuses the request.
//! Request limits are not applied here; the receivers apply them to every
//! protocol alike.
//!
//! This crate must not know about sockets, limits or storage. It is shared
//! by the OTLP receiver, the agent's forwarder, api_v3 rendering and
//! `waymark tracegen`.

pub mod json;
pub mod proto;

use waymark_model::Span;

pub use json::{JsonError, decode_json, spans_to_otlp_json};
pub use proto::{decode_protobuf, from_request, span_count, to_request};

/// A span of a request that could not be converted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("span {index} ({name:?}): {reason}")]
pub struct InvalidSpan {
    /// Position of the span in the request, counting from 0.
    pub index: usize,
    pub name: String,
    pub reason: String,
}

/// Where a reader puts what it read.
pub trait SpanOutput {
    /// A converted span.
    fn span(&mut self, span: Span);
    /// A span that could not be converted.
    fn invalid(&mut self, invalid: InvalidSpan);
    /// `n` more spans are coming (a hint).
    fn reserve(&mut self, _n: usize) {}
}

/// Everything read, for callers that need no more.
#[derive(Debug, Default)]
pub struct Collected {
    pub spans: Vec<Span>,
    pub invalid: Vec<InvalidSpan>,
}

impl SpanOutput for Collected {
    fn span(&mut self, span: Span) {
        self.spans.push(span);
    }
    fn invalid(&mut self, invalid: InvalidSpan) {
        self.invalid.push(invalid);
    }
    fn reserve(&mut self, n: usize) {
        self.spans.reserve(n);
    }
}
