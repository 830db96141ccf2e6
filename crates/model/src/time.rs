//! Time as Waymark reads it from people: durations in Go's syntax
//! (`300ms`, `1.5h`, `2h45m`) as Jaeger's APIs take them, the same plus
//! days and weeks (`7d`, `2w`) for lookbacks and settings, and the serde
//! helper every config struct uses for its durations. One parser, so a
//! duration means the same in a flag, a file and a query parameter.

/// Parses a Go duration string (`300ms`, `1.5h`, `2h45m`, `10us`, `1µs`)
/// into ns. A bare number is not accepted (Go rejects it too) except `0`.
pub fn parse_go_duration(s: &str) -> Result<u64, String> {
    let orig = s;
    let s = s.trim();
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() || s.starts_with('-') {
        return Err(format!("invalid duration {orig:?}"));
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    let mut total: f64 = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(format!("invalid duration {orig:?}"));
        }
        let n: f64 = rest[..num_len]
            .parse()
            .map_err(|_| format!("invalid duration {orig:?}"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let mult = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("missing unit in duration {orig:?}")),
            u => return Err(format!("unknown unit {u:?} in duration {orig:?}")),
        };
        total += n * mult;
    }
    Ok(total.round() as u64)
}

/// Parses a lookback such as `1h`, `2d`, `1w` (days and weeks in addition to
/// Go units) into ns.
pub fn parse_lookback(s: &str) -> Result<u64, String> {
    let s = s.trim();
    for (suffix, mult) in [("d", 86_400_000_000_000u64), ("w", 7 * 86_400_000_000_000)] {
        if let Some(n) = s.strip_suffix(suffix)
            && let Ok(n) = n.parse::<u64>()
        {
            return Ok(n * mult);
        }
    }
    parse_go_duration(s)
}

/// Deserializes a [`std::time::Duration`] written as [`parse_lookback`]
/// reads it (`500ms`, `2m`, `7d`); for `#[serde(deserialize_with)]`.
pub fn deserialize_duration<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<std::time::Duration, D::Error> {
    let s = <String as serde::Deserialize>::deserialize(d)?;
    parse_lookback(&s)
        .map(std::time::Duration::from_nanos)
        .map_err(serde::de::Error::custom)
}
