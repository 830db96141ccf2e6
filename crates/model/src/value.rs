//! Typed attribute values.

use serde::{Deserialize, Serialize};

/// A typed attribute value, mirroring OTLP's `AnyValue`.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub enum AnyValue {
    /// No value was set.
    #[default]
    Empty,
    String(String),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(Vec<u8>),
    Array(Vec<AnyValue>),
    KvList(Vec<KeyValue>),
}

/// A key and its typed value.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct KeyValue {
    pub key: String,
    pub value: AnyValue,
}

impl KeyValue {
    pub fn new(key: impl Into<String>, value: AnyValue) -> Self {
        KeyValue {
            key: key.into(),
            value,
        }
    }
}

/// The value of the first attribute named `key`.
pub fn find_attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs.iter().find(|kv| kv.key == key).map(|kv| &kv.value)
}

impl AnyValue {
    /// The value as Jaeger's query API compares it in a tag filter: strings
    /// as they are, other scalars in their canonical text form, compound
    /// values as JSON.
    pub fn to_tag_string(&self) -> String {
        match self {
            AnyValue::Empty => String::new(),
            AnyValue::String(s) => s.clone(),
            AnyValue::Bool(b) => b.to_string(),
            AnyValue::Int(i) => i.to_string(),
            AnyValue::Double(d) => format_double(*d),
            AnyValue::Bytes(b) => {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.encode(b)
            }
            AnyValue::Array(_) | AnyValue::KvList(_) => self.to_json().to_string(),
        }
    }

    /// True when the value equals `text` under the rules of
    /// [`AnyValue::to_tag_string`], without allocating for strings.
    pub fn matches_text(&self, text: &str) -> bool {
        match self {
            AnyValue::String(s) => s == text,
            AnyValue::Bool(b) => (if *b { "true" } else { "false" }) == text,
            AnyValue::Int(i) => text.parse::<i64>().ok() == Some(*i),
            AnyValue::Double(d) => text.parse::<f64>().ok() == Some(*d),
            _ => self.to_tag_string() == text,
        }
    }

    /// Plain JSON for compound values (used where a protocol has no typed
    /// arrays or maps, such as a Jaeger string tag).
    pub fn to_json(&self) -> serde_json_lite::Value {
        serde_json_lite::from_any(self)
    }
}

/// Formats a double the way Go's `strconv.FormatFloat(f, 'g', -1, 64)`
/// would for common values, so `1.5` stays `1.5` and `2.0` becomes `2`.
pub fn format_double(d: f64) -> String {
    if d.is_finite() && d == d.trunc() && d.abs() < 1e21 {
        format!("{}", d as i128)
    } else {
        format!("{d}")
    }
}

/// A tiny JSON writer for compound attribute values, so the model crate does
/// not need a JSON library.
pub mod serde_json_lite {
    use super::AnyValue;
    use std::fmt::{self, Write};

    /// A rendered JSON value.
    pub struct Value(String);

    impl fmt::Display for Value {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&self.0)
        }
    }

    pub fn from_any(v: &AnyValue) -> Value {
        let mut out = String::new();
        write(&mut out, v);
        Value(out)
    }

    fn write(out: &mut String, v: &AnyValue) {
        match v {
            AnyValue::Empty => out.push_str("null"),
            AnyValue::String(s) => quote(out, s),
            AnyValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            AnyValue::Int(i) => {
                let _ = write!(out, "{i}");
            }
            AnyValue::Double(d) if d.is_finite() => out.push_str(&super::format_double(*d)),
            AnyValue::Double(d) => quote(out, &d.to_string()),
            AnyValue::Bytes(_) => quote(out, &v.to_tag_string()),
            AnyValue::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(out, item);
                }
                out.push(']');
            }
            AnyValue::KvList(kvs) => {
                out.push('{');
                for (i, kv) in kvs.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    quote(out, &kv.key);
                    out.push(':');
                    write(out, &kv.value);
                }
                out.push('}');
            }
        }
    }

    fn quote(out: &mut String, s: &str) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_strings() {
        assert_eq!(AnyValue::Double(2.0).to_tag_string(), "2");
        assert_eq!(AnyValue::Double(1.5).to_tag_string(), "1.5");
        assert!(AnyValue::Int(500).matches_text("500"));
        assert!(!AnyValue::Int(500).matches_text("50"));
        assert!(AnyValue::Bool(true).matches_text("true"));
        let arr = AnyValue::Array(vec![AnyValue::Int(1), AnyValue::String("a\"b".into())]);
        assert_eq!(arr.to_tag_string(), r#"[1,"a\"b"]"#);
        let kv = AnyValue::KvList(vec![KeyValue::new("k", AnyValue::Bool(false))]);
        assert_eq!(kv.to_tag_string(), r#"{"k":false}"#);
    }
}
