//! Bytes -> Frame for every RESP2 and RESP3 type: what a client reads.
//!
//! The decoder is incremental: `decode` returns `Ok(None)` until a whole frame
//! is buffered, and never consumes a partial frame, so a caller can feed it
//! reads split at any byte boundary.

use crate::frame::Frame;
use crate::num::parse_i64;
use bytes::Bytes;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RESP decode error: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

type Step<T> = Result<Option<(T, usize)>, DecodeError>;

/// Decodes one frame from the start of `buf`. On success, returns the frame and
/// how many bytes it used.
pub fn decode(buf: &[u8]) -> Step<Frame> {
    decode_at(buf, 0, 0)
}

const MAX_DEPTH: usize = 512;

fn line(buf: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(at..)?;
    let cr = rest.windows(2).position(|w| w == b"\r\n")?;
    Some((&rest[..cr], at + cr + 2))
}

fn err<T>(msg: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError(msg.into()))
}

fn int(s: &[u8], what: &str) -> Result<i64, DecodeError> {
    parse_i64(s).ok_or_else(|| DecodeError(format!("bad {what}: {:?}", String::from_utf8_lossy(s))))
}

fn decode_at(buf: &[u8], at: usize, depth: usize) -> Step<Frame> {
    if depth > MAX_DEPTH {
        return err("nesting too deep");
    }
    let Some(&kind) = buf.get(at) else { return Ok(None) };
    let Some((body, next)) = line(buf, at + 1) else { return Ok(None) };
    let copy = |s: &[u8]| Bytes::copy_from_slice(s);
    let frame = match kind {
        b'+' => Frame::Simple(copy(body)),
        b'-' => Frame::Error(copy(body)),
        b':' => Frame::Integer(int(body, "integer")?),
        b'_' => {
            if !body.is_empty() {
                return err("null with a body");
            }
            Frame::Null
        }
        b'#' => match body {
            b"t" => Frame::Boolean(true),
            b"f" => Frame::Boolean(false),
            _ => return err("bad boolean"),
        },
        b',' => {
            let s = std::str::from_utf8(body).map_err(|_| DecodeError("bad double".into()))?;
            let d = match s {
                "inf" | "+inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                "nan" | "-nan" => f64::NAN,
                _ => s.parse().map_err(|_| DecodeError(format!("bad double: {s:?}")))?,
            };
            // One NaN: a sign on it carries no meaning (found by fuzzing).
            Frame::Double(if d.is_nan() { f64::NAN } else { d })
        }
        b'(' => {
            let digits = body.strip_prefix(b"-").unwrap_or(body);
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return err("bad big number");
            }
            Frame::BigNumber(copy(body))
        }
        b'$' | b'=' | b'!' => {
            let n = int(body, "bulk length")?;
            if n == -1 && kind == b'$' {
                return Ok(Some((Frame::NullBulk, next)));
            }
            if n < 0 {
                return err("negative bulk length");
            }
            let end = next + n as usize;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return err("bulk not terminated by CRLF");
            }
            let data = &buf[next..end];
            let frame = match kind {
                b'$' => Frame::Bulk(copy(data)),
                b'!' => Frame::Error(copy(data)),
                _ => {
                    if data.len() < 4 || data[3] != b':' {
                        return err("verbatim string without a format");
                    }
                    Frame::Verbatim { format: [data[0], data[1], data[2]], text: copy(&data[4..]) }
                }
            };
            return Ok(Some((frame, end + 2)));
        }
        b'*' | b'~' | b'>' => {
            let n = int(body, "aggregate length")?;
            if n == -1 && kind == b'*' {
                return Ok(Some((Frame::NullArray, next)));
            }
            if n < 0 {
                return err("negative aggregate length");
            }
            let Some((items, end)) = decode_seq(buf, next, n as usize, depth)? else { return Ok(None) };
            let frame = match kind {
                b'*' => Frame::Array(items),
                b'~' => Frame::Set(items),
                _ => Frame::Push(items),
            };
            return Ok(Some((frame, end)));
        }
        b'%' | b'|' => {
            let n = int(body, "map length")?;
            if n < 0 {
                return err("negative map length");
            }
            let Some((items, end)) = decode_seq(buf, next, 2 * n as usize, depth)? else { return Ok(None) };
            let mut it = items.into_iter();
            let mut pairs = Vec::with_capacity(n as usize);
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                pairs.push((k, v));
            }
            if kind == b'%' {
                return Ok(Some((Frame::Map(pairs), end)));
            }
            let Some((inner, end)) = decode_at(buf, end, depth + 1)? else { return Ok(None) };
            return Ok(Some((Frame::Attribute(pairs, Box::new(inner)), end)));
        }
        other => return err(format!("unknown type byte {other:#04x}")),
    };
    Ok(Some((frame, next)))
}

fn decode_seq(buf: &[u8], mut at: usize, n: usize, depth: usize) -> Step<Vec<Frame>> {
    // The count comes off the wire: don't trust it for preallocation.
    let mut items = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        match decode_at(buf, at, depth + 1)? {
            Some((f, next)) => {
                items.push(f);
                at = next;
            }
            None => return Ok(None),
        }
    }
    Ok(Some((items, at)))
}
