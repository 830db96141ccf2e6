//! Index names in Jaeger's layout.
//!
//! Each kind of document has a base name (`jaeger-span`, `jaeger-service`,
//! `jaeger-dependencies`), optionally preceded by a prefix joined with `-`
//! (`prod` gives `prod-jaeger-span`; a prefix that already ends in `-` is
//! not doubled). Then either:
//!
//! * **dated indices** (the default): the base name, `-`, and the UTC date of
//!   the document's time, `YYYY-MM-DD`, or `YYYY-MM-DD-HH` with hourly
//!   rollover; the separator between the date parts is configurable
//!   (`jaeger-span-2026.11.25` with `.`), the one after the base name is
//!   always `-`;
//! * **aliases** (for rollover with ILM/ISM or `es-rollover`): writes go to
//!   `<base>-write`, reads to `<base>-read`, whatever the time.

use crate::time::{Civil, NANOS_PER_DAY, NANOS_PER_HOUR};

/// The kinds of documents, each in indices of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IndexKind {
    Span,
    Service,
    Dependencies,
}

impl IndexKind {
    pub const ALL: [IndexKind; 3] = [IndexKind::Span, IndexKind::Service, IndexKind::Dependencies];

    /// The base name, before any prefix and date.
    pub fn base(self) -> &'static str {
        match self {
            IndexKind::Span => "jaeger-span",
            IndexKind::Service => "jaeger-service",
            IndexKind::Dependencies => "jaeger-dependencies",
        }
    }
}

/// How often a new dated index starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Rollover {
    #[default]
    Day,
    Hour,
}

impl Rollover {
    fn period_nanos(self) -> u64 {
        match self {
            Rollover::Day => NANOS_PER_DAY,
            Rollover::Hour => NANOS_PER_HOUR,
        }
    }
}

/// Where documents of each kind go: Jaeger's `--es.index-prefix`,
/// `--es.index-date-separator`, `--es.index-rollover-frequency-*` and
/// `--es.use-aliases`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexConfig {
    /// Prepended to every name with `-`; empty for none.
    pub prefix: String,
    /// Between year, month, day (and hour); `-` by default.
    pub date_separator: String,
    pub span_rollover: Rollover,
    pub service_rollover: Rollover,
    pub dependencies_rollover: Rollover,
    /// Write to `<base>-write` and read from `<base>-read` instead of dated
    /// indices.
    pub use_aliases: bool,
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            prefix: String::new(),
            date_separator: "-".into(),
            span_rollover: Rollover::Day,
            service_rollover: Rollover::Day,
            dependencies_rollover: Rollover::Day,
            use_aliases: false,
        }
    }
}

impl IndexConfig {
    /// The prefix as it precedes a name: `""`, or the prefix ending in `-`.
    pub fn prefix_with_separator(&self) -> String {
        if self.prefix.is_empty() || self.prefix.ends_with('-') {
            self.prefix.clone()
        } else {
            format!("{}-", self.prefix)
        }
    }

    /// The prefixed base name: `prod-jaeger-span`.
    pub fn base_name(&self, kind: IndexKind) -> String {
        format!("{}{}", self.prefix_with_separator(), kind.base())
    }

    pub fn rollover(&self, kind: IndexKind) -> Rollover {
        match kind {
            IndexKind::Span => self.span_rollover,
            IndexKind::Service => self.service_rollover,
            IndexKind::Dependencies => self.dependencies_rollover,
        }
    }

    /// The dated index holding documents of `kind` for the time `ns` (since
    /// the epoch, UTC), whether or not aliases are in use.
    pub fn dated_index(&self, kind: IndexKind, ns: u64) -> String {
        let c = Civil::from_unix_nanos(ns);
        let sep = &self.date_separator;
        let mut name = format!(
            "{}-{:04}{sep}{:02}{sep}{:02}",
            self.base_name(kind),
            c.year,
            c.month,
            c.day
        );
        if self.rollover(kind) == Rollover::Hour {
            name.push_str(&format!("{sep}{:02}", c.hour));
        }
        name
    }

    /// The write alias, `<base>-write`.
    pub fn write_alias(&self, kind: IndexKind) -> String {
        format!("{}-write", self.base_name(kind))
    }

    /// The read alias, `<base>-read`.
    pub fn read_alias(&self, kind: IndexKind) -> String {
        format!("{}-read", self.base_name(kind))
    }

    /// The pattern matching every index of `kind`: `<base>-*`.
    pub fn pattern(&self, kind: IndexKind) -> String {
        format!("{}-*", self.base_name(kind))
    }

    /// Where a document of `kind` for the time `ns` is written.
    pub fn write_target(&self, kind: IndexKind, ns: u64) -> String {
        if self.use_aliases {
            self.write_alias(kind)
        } else {
            self.dated_index(kind, ns)
        }
    }

    /// The indices to read for documents of `kind` with times in
    /// `[start_ns, end_ns]`, the range first widened by `margin_ns` on both
    /// sides (clock skew between hosts puts a span's start time into a
    /// neighbouring index). Newest first, each once; the read alias alone
    /// when aliases are in use.
    pub fn read_targets(
        &self,
        kind: IndexKind,
        start_ns: u64,
        end_ns: u64,
        margin_ns: u64,
    ) -> Vec<String> {
        if self.use_aliases {
            return vec![self.read_alias(kind)];
        }
        let start = start_ns.saturating_sub(margin_ns);
        let end = end_ns.max(start_ns).saturating_add(margin_ns);
        let period = self.rollover(kind).period_nanos();
        let mut out: Vec<String> = Vec::new();
        // Step back from the end one period at a time; every index whose
        // period overlaps the range is named exactly once.
        let mut t = end;
        loop {
            let name = self.dated_index(kind, t);
            if out.last() != Some(&name) {
                out.push(name);
            }
            let period_start = t - t % period;
            if period_start <= start {
                break;
            }
            t = period_start - 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_rfc3339;

    fn at(s: &str) -> u64 {
        parse_rfc3339(s).unwrap()
    }

    #[test]
    fn daily_names() {
        let c = IndexConfig::default();
        let t = at("2026-11-25T20:50:00Z");
        assert_eq!(c.write_target(IndexKind::Span, t), "jaeger-span-2026-11-25");
        assert_eq!(
            c.write_target(IndexKind::Service, t),
            "jaeger-service-2026-11-25"
        );
        assert_eq!(
            c.write_target(IndexKind::Dependencies, t),
            "jaeger-dependencies-2026-11-25"
        );
        // A UTC day starts at midnight UTC.
        assert_eq!(
            c.dated_index(IndexKind::Span, at("2026-11-25T23:59:59.999999999Z")),
            "jaeger-span-2026-11-25"
        );
        assert_eq!(
            c.dated_index(IndexKind::Span, at("2026-11-26T00:30:00+01:00")),
            "jaeger-span-2026-11-25"
        );
    }

    #[test]
    fn prefix_separator_and_hourly() {
        let c = IndexConfig {
            prefix: "prod".into(),
            date_separator: ".".into(),
            span_rollover: Rollover::Hour,
            ..Default::default()
        };
        let t = at("2026-01-05T07:08:09Z");
        assert_eq!(
            c.dated_index(IndexKind::Span, t),
            "prod-jaeger-span-2026.01.05.07"
        );
        assert_eq!(
            c.dated_index(IndexKind::Service, t),
            "prod-jaeger-service-2026.01.05"
        );
        let c2 = IndexConfig {
            prefix: "prod-".into(),
            date_separator: String::new(),
            ..Default::default()
        };
        assert_eq!(
            c2.dated_index(IndexKind::Span, t),
            "prod-jaeger-span-20260105"
        );
        assert_eq!(c2.pattern(IndexKind::Span), "prod-jaeger-span-*");
    }

    #[test]
    fn aliases() {
        let c = IndexConfig {
            prefix: "prod".into(),
            use_aliases: true,
            ..Default::default()
        };
        assert_eq!(c.write_target(IndexKind::Span, 1), "prod-jaeger-span-write");
        assert_eq!(
            c.read_targets(IndexKind::Service, 0, u64::MAX, 0),
            ["prod-jaeger-service-read"]
        );
    }

    #[test]
    fn read_ranges() {
        let c = IndexConfig::default();
        let (s, e) = (at("2026-11-23T10:00:00Z"), at("2026-11-25T01:00:00Z"));
        assert_eq!(
            c.read_targets(IndexKind::Span, s, e, 0),
            [
                "jaeger-span-2026-11-25",
                "jaeger-span-2026-11-24",
                "jaeger-span-2026-11-23"
            ]
        );
        // Within one day: one index; widened by an hour across midnight.
        let t = at("2026-11-25T00:30:00Z");
        assert_eq!(
            c.read_targets(IndexKind::Span, t, t, 0),
            ["jaeger-span-2026-11-25"]
        );
        assert_eq!(
            c.read_targets(IndexKind::Span, t, t, NANOS_PER_HOUR),
            ["jaeger-span-2026-11-25", "jaeger-span-2026-11-24"]
        );
        let h = IndexConfig {
            span_rollover: Rollover::Hour,
            ..Default::default()
        };
        assert_eq!(
            h.read_targets(
                IndexKind::Span,
                at("2026-11-25T22:59:00Z"),
                at("2026-11-25T23:00:00Z"),
                0
            ),
            ["jaeger-span-2026-11-25-23", "jaeger-span-2026-11-25-22"]
        );
    }
}
