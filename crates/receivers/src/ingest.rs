//! The one ingest path every receiver takes once it has bytes:
//! decode → validate → limit → count → submit → status.
//!
//! A protocol's decoder fills a [`Decoded`], which applies the request
//! limits to each span as it arrives, so no protocol can forget one. The
//! receiver then hands the outcome, good or bad, to
//! [`ReceiverContext::ingest`], which counts it under the same metric names
//! for every protocol, submits the spans and classifies any failure as a
//! [`Failure`]. Each receiver only turns that into its protocol's answer
//! (an OTLP `Status`, Jaeger's 202, a gRPC code), through the one mapping in
//! `waymark_edge`.

use waymark_edge::Failure;
use waymark_edge::body::BodyError;
use waymark_model::{AnyValue, KeyValue, Span};
use waymark_otlp::{InvalidSpan, SpanOutput};
use waymark_pipeline::SubmitError;

use crate::{Limits, ReceiverContext};

/// The spans of one request that passed validation, and what did not.
#[derive(Debug)]
pub struct Decoded {
    pub spans: Vec<Span>,
    /// Spans rejected one by one (bad ids, over a per-span limit).
    pub rejected: usize,
    /// The first few rejection reasons, for the partial-success message.
    pub errors: Vec<String>,
    /// Spans seen so far, kept or not: the next span's index.
    seen: usize,
    limits: Limits,
}

const MAX_REPORTED_ERRORS: usize = 5;

/// A request with more spans than `limits.max_spans_per_request`; it is
/// refused whole.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("request holds {got} spans, more than the limit of {limit} (limits.max_spans_per_request)")]
pub struct TooManySpans {
    pub got: usize,
    pub limit: usize,
}

impl Decoded {
    pub fn new(limits: &Limits) -> Decoded {
        Decoded {
            spans: Vec::new(),
            rejected: 0,
            errors: Vec::new(),
            seen: 0,
            limits: limits.clone(),
        }
    }

    /// Refuses the request before decoding when it announces more spans
    /// than the limit.
    pub fn expect(&self, n: usize) -> Result<(), TooManySpans> {
        let got = self.seen + n;
        if got > self.limits.max_spans_per_request {
            return Err(TooManySpans {
                got,
                limit: self.limits.max_spans_per_request,
            });
        }
        Ok(())
    }

    /// Adds a decoded span, or rejects it when it breaks a per-span limit.
    /// Past the span-count limit nothing more is kept (memory stays bounded)
    /// and [`Decoded::finish`] refuses the request.
    pub fn push(&mut self, span: Span) {
        let index = self.seen;
        self.seen += 1;
        if self.seen > self.limits.max_spans_per_request {
            return;
        }
        match check_span(&span, &self.limits) {
            Ok(()) => self.spans.push(span),
            Err(why) => self.note_rejected(format!("span {index} ({:?}): {why}", span.name)),
        }
    }

    /// Rejects the next span of the request, which could not be decoded;
    /// `name` is its name when that is known, or empty.
    pub fn reject(&mut self, name: &str, why: impl std::fmt::Display) {
        let index = self.seen;
        self.seen += 1;
        if self.seen <= self.limits.max_spans_per_request {
            self.note_rejected(if name.is_empty() {
                format!("span {index}: {why}")
            } else {
                format!("span {index} ({name:?}): {why}")
            });
        }
    }

    fn note_rejected(&mut self, reason: String) {
        self.rejected += 1;
        if self.errors.len() < MAX_REPORTED_ERRORS {
            self.errors.push(reason);
        }
    }

    /// The decoded request, or the span-count limit it broke.
    pub fn finish(self) -> Result<Decoded, TooManySpans> {
        if self.seen > self.limits.max_spans_per_request {
            return Err(TooManySpans {
                got: self.seen,
                limit: self.limits.max_spans_per_request,
            });
        }
        Ok(self)
    }

    /// The partial-success message, empty when nothing was rejected.
    pub fn error_message(&self) -> String {
        if self.rejected == 0 {
            return String::new();
        }
        let more = self.rejected.saturating_sub(self.errors.len());
        let mut msg = format!(
            "rejected {} of {} spans: {}",
            self.rejected,
            self.rejected + self.spans.len(),
            self.errors.join("; ")
        );
        if more > 0 {
            msg.push_str(&format!("; and {more} more"));
        }
        msg
    }
}

impl SpanOutput for Decoded {
    fn span(&mut self, span: Span) {
        self.push(span);
    }

    fn invalid(&mut self, invalid: InvalidSpan) {
        self.reject(&invalid.name, &invalid.reason);
    }

    fn reserve(&mut self, n: usize) {
        let room = self.limits.max_spans_per_request.saturating_sub(self.seen);
        self.spans.reserve(n.min(room));
    }
}

/// The per-span limits: attributes per list, string lengths.
fn check_span(s: &Span, limits: &Limits) -> Result<(), String> {
    let max_attrs = limits.max_attributes_per_span;
    let lists = std::iter::once(&s.attributes)
        .chain(s.events.iter().map(|e| &e.attributes))
        .chain(s.links.iter().map(|l| &l.attributes));
    for list in lists {
        if list.len() > max_attrs {
            return Err(format!(
                "{} attributes exceed the limit of {max_attrs} (limits.max_attributes_per_span)",
                list.len()
            ));
        }
    }
    let max = limits.max_string_bytes;
    let too_long = |what: &str, len: usize| {
        format!("{what} is {len} bytes, longer than the limit of {max} (limits.max_string_bytes)")
    };
    if s.name.len() > max {
        return Err(too_long("name", s.name.len()));
    }
    let check_kvs = |kvs: &[KeyValue]| -> Result<(), String> {
        for kv in kvs {
            if kv.key.len() > max {
                return Err(too_long("an attribute key", kv.key.len()));
            }
            let len = longest_string(&kv.value);
            if len > max {
                return Err(too_long(&format!("attribute {:?}", kv.key), len));
            }
        }
        Ok(())
    };
    check_kvs(&s.attributes)?;
    for e in &s.events {
        if e.name.len() > max {
            return Err(too_long("an event name", e.name.len()));
        }
        check_kvs(&e.attributes)?;
    }
    for l in &s.links {
        check_kvs(&l.attributes)?;
    }
    Ok(())
}

fn longest_string(v: &AnyValue) -> usize {
    match v {
        AnyValue::String(s) => s.len(),
        AnyValue::Bytes(b) => b.len(),
        AnyValue::Array(items) => items.iter().map(longest_string).max().unwrap_or(0),
        AnyValue::KvList(kvs) => kvs
            .iter()
            .map(|kv| kv.key.len().max(longest_string(&kv.value)))
            .max()
            .unwrap_or(0),
        _ => 0,
    }
}

/// Why a request was not (wholly) stored, in any protocol.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// A content type the endpoint does not read (the message names the
    /// ones it does).
    #[error("{0}")]
    UnsupportedMedia(String),
    #[error(transparent)]
    Body(#[from] BodyError),
    /// The protocol's own decode error.
    #[error(transparent)]
    Malformed(Box<dyn std::error::Error + Send + Sync>),
    #[error(transparent)]
    TooManySpans(#[from] TooManySpans),
    /// Every span of the request was rejected, on a protocol that cannot
    /// report a partial success.
    #[error("{0}")]
    AllRejected(String),
    #[error(transparent)]
    Refused(#[from] SubmitError),
}

impl IngestError {
    /// A protocol's decode error.
    pub fn malformed(e: impl std::error::Error + Send + Sync + 'static) -> IngestError {
        IngestError::Malformed(Box::new(e))
    }

    /// What this means to the client; the one classification every
    /// receiver answers with.
    pub fn failure(&self) -> Failure {
        match self {
            IngestError::UnsupportedMedia(_) => Failure::UnsupportedMedia,
            IngestError::Body(e) => e.failure(),
            IngestError::Malformed(_)
            | IngestError::TooManySpans(_)
            | IngestError::AllRejected(_) => Failure::Invalid,
            IngestError::Refused(e) => e.kind().into(),
        }
    }

    /// The gRPC status this error answers with.
    pub fn grpc_status(&self) -> tonic::Status {
        self.failure().grpc_status(self.to_string())
    }

    /// A plain-text HTTP answer.
    pub fn text(&self) -> axum::response::Response {
        self.failure().text(self.to_string())
    }
}

/// What was stored of an accepted request.
#[derive(Debug)]
pub struct Accepted {
    pub stored: usize,
    pub rejected: usize,
    /// The partial-success message, empty when nothing was rejected.
    pub message: String,
}

impl ReceiverContext {
    /// Counts a request's outcome, submits its valid spans and waits until
    /// they are durable. Every receiver ends here, so every protocol is
    /// counted under the same names: `waymark_malformed_requests` for a
    /// request that could not be used at all, `waymark_spans_received` and
    /// `waymark_spans_rejected` for spans, and the pipeline's stored /
    /// refused / failed counters.
    pub async fn ingest(
        &self,
        protocol: &'static str,
        decoded: Result<Decoded, IngestError>,
    ) -> Result<Accepted, IngestError> {
        let metrics = self.pipeline.metrics();
        let decoded = match decoded.and_then(|d| d.finish().map_err(IngestError::from)) {
            Ok(d) => d,
            Err(IngestError::TooManySpans(e)) => {
                metrics.count_received(protocol, e.got);
                metrics.count_rejected(protocol, e.got);
                return Err(e.into());
            }
            Err(e) => {
                metrics.count_malformed(protocol);
                return Err(e);
            }
        };
        let stored = decoded.spans.len();
        metrics.count_received(protocol, stored + decoded.rejected);
        metrics.count_rejected(protocol, decoded.rejected);
        let message = decoded.error_message();
        self.pipeline.submit(protocol, decoded.spans).await?;
        Ok(Accepted {
            stored,
            rejected: decoded.rejected,
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_enforced_with_names() {
        let spans = waymark_testkit::fixture_trace(1);
        let decode = |limits: &Limits| {
            let mut d = Decoded::new(limits);
            for s in spans.clone() {
                d.push(s);
            }
            d.finish()
        };
        let d = decode(&Limits {
            max_attributes_per_span: 2,
            ..Limits::default()
        })
        .unwrap();
        assert_eq!(d.rejected, 1, "{}", d.error_message());
        assert!(d.error_message().contains("max_attributes_per_span"));
        let e = decode(&Limits {
            max_spans_per_request: 1,
            ..Limits::default()
        })
        .unwrap_err();
        assert_eq!(e, TooManySpans { got: 2, limit: 1 });
        let d = decode(&Limits {
            max_string_bytes: 5,
            ..Limits::default()
        })
        .unwrap();
        assert_eq!(d.rejected, 2);
        assert!(d.error_message().contains("max_string_bytes"));
        assert!(
            d.error_message()
                .starts_with("rejected 2 of 2 spans: span 0 (")
        );
    }

    #[test]
    fn nothing_is_kept_past_the_span_limit() {
        let limits = Limits {
            max_spans_per_request: 3,
            ..Limits::default()
        };
        let mut d = Decoded::new(&limits);
        for i in 0..10 {
            d.push(waymark_testkit::fixture_trace(i)[0].clone());
        }
        assert_eq!(d.spans.len(), 3);
        assert_eq!(d.finish().unwrap_err(), TooManySpans { got: 10, limit: 3 });
        assert!(Decoded::new(&limits).expect(4).is_err());
        assert!(Decoded::new(&limits).expect(3).is_ok());
    }
}
