//! Query-string parsing shared by the API handlers: repeated keys, bare keys
//! without `=` (how Jaeger's UI sends empty filters), Go duration strings
//! and RFC 3339 timestamps. Every error names the parameter.

use std::fmt;

/// Decoded `key=value` pairs in order; `+` is a space, a bare key has an
/// empty value.
pub struct Params(Vec<(String, String)>);

/// A bad parameter: its name and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamError(pub String);

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Params {
    pub fn parse(query: Option<&str>) -> Params {
        Params(
            form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The last non-empty value of the first of `names` that has one.
    pub fn get(&self, names: &[&str]) -> Option<&str> {
        names.iter().find_map(|n| {
            self.0
                .iter()
                .rev()
                .find(|(k, v)| k == n && !v.is_empty())
                .map(|(_, v)| v.as_str())
        })
    }

    /// Every non-empty value of `name`.
    pub fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// An integer parameter.
    pub fn int<T: std::str::FromStr>(&self, names: &[&str]) -> Result<Option<T>, ParamError> {
        match self.get(names) {
            None => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| {
                ParamError(format!(
                    "unable to parse param '{}': {v:?} is not an integer",
                    names[0]
                ))
            }),
        }
    }

    /// A Go duration parameter, in ns.
    pub fn duration(&self, names: &[&str]) -> Result<Option<u64>, ParamError> {
        match self.get(names) {
            None => Ok(None),
            Some(v) => parse_go_duration(v)
                .map(Some)
                .map_err(|e| ParamError(format!("unable to parse param '{}': {e}", names[0]))),
        }
    }
}

pub use waymark_model::time::{parse_go_duration, parse_lookback};

/// Parses an RFC 3339 timestamp (`2024-05-01T10:00:00.123Z`,
/// `...+02:00`) into ns since the epoch.
pub fn parse_rfc3339(s: &str) -> Result<u64, String> {
    let err = || format!("{s:?} is not an RFC 3339 timestamp");
    let b = s.as_bytes();
    if b.len() < 20 {
        return Err(err());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        s.get(r).and_then(|x| x.parse().ok()).ok_or_else(err)
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(err());
    }
    let mut i = 19;
    let mut frac_ns: i64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &s[start..i];
        if digits.is_empty() {
            return Err(err());
        }
        let mut padded = digits.chars().take(9).collect::<String>();
        while padded.len() < 9 {
            padded.push('0');
        }
        frac_ns = padded.parse().map_err(|_| err())?;
    }
    let offset_s: i64 = match b.get(i) {
        Some(b'Z') | Some(b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            let v = oh * 3600 + om * 60;
            if *sign == b'+' { v } else { -v }
        }
        _ => return Err(err()),
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return Err(err());
    }
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_s;
    if secs < 0 {
        return Err(format!("{s:?} is before 1970"));
    }
    Ok(secs as u64 * 1_000_000_000 + frac_ns as u64)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats ns since the epoch as RFC 3339 with nanoseconds, in UTC.
pub fn format_rfc3339(ns: u64) -> String {
    let secs = (ns / 1_000_000_000) as i64;
    let nanos = ns % 1_000_000_000;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // civil_from_days
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1.2ms"), Ok(1_200_000));
        assert_eq!(parse_go_duration("100ms"), Ok(100_000_000));
        assert_eq!(parse_go_duration("1s"), Ok(1_000_000_000));
        assert_eq!(parse_go_duration("2h45m"), Ok(9_900_000_000_000));
        assert_eq!(parse_go_duration("10us"), Ok(10_000));
        assert_eq!(parse_go_duration("10µs"), Ok(10_000));
        assert_eq!(parse_go_duration("0"), Ok(0));
        assert!(
            parse_go_duration("12")
                .unwrap_err()
                .contains("missing unit")
        );
        assert!(parse_go_duration("xyz").is_err());
        assert!(
            parse_go_duration("1y")
                .unwrap_err()
                .contains("unknown unit")
        );
    }

    #[test]
    fn bare_keys_and_repeats() {
        let p = Params::parse(Some(
            "service=a+b&maxDuration&minDuration&tag=x:1&tag=y:2&limit=20",
        ));
        assert_eq!(p.get(&["service"]), Some("a b"));
        assert_eq!(p.duration(&["maxDuration"]), Ok(None));
        assert_eq!(p.all("tag").collect::<Vec<_>>(), vec!["x:1", "y:2"]);
        assert_eq!(p.int::<usize>(&["limit"]), Ok(Some(20)));
        let p = Params::parse(Some("limit=abc"));
        assert!(
            p.int::<usize>(&["limit"])
                .unwrap_err()
                .0
                .contains("'limit'")
        );
    }

    #[test]
    fn rfc3339_roundtrip() {
        let ns = parse_rfc3339("2024-05-01T10:00:00.123456789Z").unwrap();
        assert_eq!(format_rfc3339(ns), "2024-05-01T10:00:00.123456789Z");
        assert_eq!(parse_rfc3339("1970-01-01T01:00:00+01:00"), Ok(0));
        assert_eq!(
            parse_rfc3339("2000-03-01T00:00:00Z"),
            Ok(951_868_800_000_000_000)
        );
        assert!(parse_rfc3339("yesterday").is_err());
    }

    #[test]
    fn lookbacks() {
        assert_eq!(parse_lookback("2d"), Ok(2 * 86_400_000_000_000));
        assert_eq!(parse_lookback("1h"), Ok(3_600_000_000_000));
    }
}
