//! Limits on what untrusted clients may send. Exceeding one gets a precise
//! error naming the limit, never a panic or unbounded memory use.

/// Per-request and per-span limits, shared by every receiver (the
/// `limits` section of the configuration file).
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body, measured both as sent and after decompression.
    pub max_request_bytes: usize,
    /// Most spans in one request; a larger request is refused whole.
    pub max_spans_per_request: usize,
    /// Most attributes on one span, event or link; a span over it is
    /// rejected (reported in the partial-success answer).
    pub max_attributes_per_span: usize,
    /// Longest string (names, attribute keys and values) in bytes; a span
    /// with a longer one is rejected.
    pub max_string_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_bytes: 16 << 20,
            max_spans_per_request: 50_000,
            max_attributes_per_span: 1_024,
            max_string_bytes: 128 << 10,
        }
    }
}
