//! Number parsing and formatting with Redis's exact rules.
//!
//! Redis parses integers with `string2ll`, which is stricter than Rust's
//! `str::parse`: no `+`, no leading zeros, no `-0`, no spaces. It prints doubles
//! in RESP replies with C's `%.17g` (Redis 7.0; 7.2 switched to shortest form).

/// `string2ll` from Redis's util.c: the whole slice must be a canonical integer.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    if neg {
        if v > (i64::MAX as u64) + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else if v > i64::MAX as u64 {
        None
    } else {
        Some(v as i64)
    }
}

/// C's `printf("%.*g", precision, d)`.
pub fn format_g(d: f64, precision: usize) -> String {
    if d.is_nan() {
        return if d.is_sign_negative() { "-nan".into() } else { "nan".into() };
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let p = precision.max(1);
    if d == 0.0 {
        return if d.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    // An integer of at most `p` digits prints as itself: the usual sorted-set
    // score, and exact formatting (below) costs ten times as much.
    if d.fract() == 0.0 && d.abs() < 10f64.powi(p.min(18) as i32) {
        return (d as i64).to_string();
    }
    format_g_exact(d, p)
}

/// `format_g` of a finite, non-zero `d` at precision `p` >= 1.
fn format_g_exact(d: f64, p: usize) -> String {
    // The exponent %g decides on is the one %e would print at precision P-1,
    // i.e. after rounding.
    let sci = format!("{:.*e}", p - 1, d);
    let (mantissa, exp) = sci.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().expect("exponent is an integer");
    if exp < -4 || exp >= p as i32 {
        let m = strip_fraction_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        strip_fraction_zeros(&format!("{:.*}", decimals, d)).to_string()
    }
}

fn strip_fraction_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// How a RESP reply prints a double in Redis 7.0 (`addReplyDouble`).
pub fn format_double_reply(d: f64) -> String {
    format_g(d, 17)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_print_as_exact_formatting_would() {
        let values = [1.0, -1.0, 7.0, 100.0, -12345.0, 99999.0, 100000.0, 123456789.0, 1e15 - 1.0, 1e15, 1e16 + 2.0, 99999999999999984.0, 1e17, 2f64.powi(60)];
        for d in values {
            for p in [1, 2, 5, 6, 15, 16, 17, 18, 20] {
                assert_eq!(format_g(d, p), format_g_exact(d, p), "{d} at precision {p}");
            }
        }
        assert_eq!(format_g(1e15, 17), "1000000000000000");
        assert_eq!(format_g(1e17, 17), "1e+17");
        assert_eq!(format_g(123456.0, 5), "1.2346e+05");
    }

    #[test]
    fn parse_i64_follows_string2ll() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-1"), Some(-1));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [&b""[..], b"-", b"+1", b"01", b"-0", b" 1", b"1 ", b"1.0", b"9223372036854775808", b"abc"] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn format_g_matches_printf() {
        // Expected strings are what glibc's printf("%.17g") prints.
        assert_eq!(format_g(1.1, 17), "1.1000000000000001");
        assert_eq!(format_g(1.5, 17), "1.5");
        assert_eq!(format_g(10.0, 17), "10");
        assert_eq!(format_g(0.1, 17), "0.10000000000000001");
        assert_eq!(format_g(1e17, 17), "1e+17");
        assert_eq!(format_g(1e16, 17), "10000000000000000");
        assert_eq!(format_g(1.5e-5, 17), "1.5e-05");
        assert_eq!(format_g(1.3e-5, 17), "1.2999999999999999e-05");
        assert_eq!(format_g(0.0001, 17), "0.0001");
        assert_eq!(format_g(-2.5, 17), "-2.5");
        assert_eq!(format_g(0.0, 17), "0");
        assert_eq!(format_g(-0.0, 17), "-0");
        assert_eq!(format_g(f64::INFINITY, 17), "inf");
        assert_eq!(format_g(f64::NEG_INFINITY, 17), "-inf");
        assert_eq!(format_g(123456.0, 6), "123456");
        assert_eq!(format_g(1234567.0, 6), "1.23457e+06");
        assert_eq!(format_g(1.7976931348623157e308, 17), "1.7976931348623157e+308");
    }
}
