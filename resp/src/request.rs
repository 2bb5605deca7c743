//! Server-side request parsing: multibulk (`*N\r\n$len\r\n...`) and inline
//! commands as telnet sends them, with the exact protocol errors of Redis 7.0's
//! `processMultibulkBuffer` and `processInlineBuffer`.
//!
//! The parser keeps its position across reads (like Redis's `multibulklen` and
//! `bulklen`), so a large value arriving in many small reads is scanned once.

use crate::num::parse_i64;
use bytes::{Buf, Bytes, BytesMut};

/// Redis's PROTO_INLINE_MAX_SIZE: the longest line without a newline.
pub const INLINE_MAX_SIZE: usize = 64 * 1024;

/// Limits the parser enforces. `auth_required` is true while the connection
/// has not authenticated and a password is configured: Redis then refuses
/// large requests before reading them.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_bulk_len: i64,
    pub auth_required: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_bulk_len: 512 * 1024 * 1024, auth_required: false }
    }
}

/// A protocol error. The connection answers `-ERR Protocol error: <msg>` and closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub Vec<u8>);

impl ProtocolError {
    fn new(msg: &str) -> Self {
        ProtocolError(msg.as_bytes().to_vec())
    }

    /// The full error reply text (without the leading `-`).
    pub fn reply_text(&self) -> Vec<u8> {
        let mut v = b"ERR Protocol error: ".to_vec();
        v.extend_from_slice(&self.0);
        v
    }
}

#[derive(Default, Debug)]
pub struct RequestParser {
    /// Arguments still expected in the current multibulk request (0 = none in progress).
    multibulk_left: usize,
    /// Length of the bulk being read, once its `$len` line was consumed.
    bulk_len: Option<usize>,
    argv: Vec<Bytes>,
}

impl RequestParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// True while a multibulk request is partially read.
    pub fn in_progress(&self) -> bool {
        self.multibulk_left > 0
    }

    /// Takes the next complete command out of `buf`. `Ok(None)` means more
    /// bytes are needed. Empty requests (`*0`, a blank inline line) are skipped.
    pub fn next(&mut self, buf: &mut BytesMut, limits: Limits) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        loop {
            if buf.is_empty() {
                return Ok(None);
            }
            let parsed = if self.multibulk_left > 0 || buf[0] == b'*' {
                self.multibulk(buf, limits)?
            } else {
                inline(buf)?
            };
            match parsed {
                Parsed::Need => return Ok(None),
                Parsed::Empty => continue,
                Parsed::Command(argv) => return Ok(Some(argv)),
            }
        }
    }

    fn multibulk(&mut self, buf: &mut BytesMut, limits: Limits) -> Result<Parsed, ProtocolError> {
        if self.multibulk_left == 0 {
            let Some(cr) = memchr(b'\r', buf) else {
                if buf.len() > INLINE_MAX_SIZE {
                    return Err(ProtocolError::new("too big mbulk count string"));
                }
                return Ok(Parsed::Need);
            };
            if cr + 2 > buf.len() {
                return Ok(Parsed::Need);
            }
            let n = match parse_i64(&buf[1..cr]) {
                Some(n) if n <= i32::MAX as i64 => n,
                _ => return Err(ProtocolError::new("invalid multibulk length")),
            };
            if n > 10 && limits.auth_required {
                return Err(ProtocolError::new("unauthenticated multibulk length"));
            }
            buf.advance(cr + 2);
            if n <= 0 {
                return Ok(Parsed::Empty);
            }
            self.multibulk_left = n as usize;
            self.argv = Vec::with_capacity((n as usize).min(1024));
        }
        while self.multibulk_left > 0 {
            let len = match self.bulk_len {
                Some(len) => len,
                None => {
                    let Some(cr) = memchr(b'\r', buf) else {
                        if buf.len() > INLINE_MAX_SIZE {
                            return Err(ProtocolError::new("too big bulk count string"));
                        }
                        return Ok(Parsed::Need);
                    };
                    if cr + 2 > buf.len() {
                        return Ok(Parsed::Need);
                    }
                    if buf[0] != b'$' {
                        let mut msg = b"expected '$', got '".to_vec();
                        msg.push(buf[0]);
                        msg.push(b'\'');
                        return Err(ProtocolError(sanitize(msg)));
                    }
                    let n = match parse_i64(&buf[1..cr]) {
                        Some(n) if n >= 0 && n <= limits.max_bulk_len => n,
                        _ => return Err(ProtocolError::new("invalid bulk length")),
                    };
                    if n > 16384 && limits.auth_required {
                        return Err(ProtocolError::new("unauthenticated bulk length"));
                    }
                    buf.advance(cr + 2);
                    self.bulk_len = Some(n as usize);
                    n as usize
                }
            };
            if buf.len() < len + 2 {
                // Make room once for the whole value instead of growing by reads.
                buf.reserve(len + 2 - buf.len());
                return Ok(Parsed::Need);
            }
            // Like Redis, the two bytes after the payload are skipped unchecked.
            let arg = buf.split_to(len).freeze();
            buf.advance(2);
            self.argv.push(arg);
            self.bulk_len = None;
            self.multibulk_left -= 1;
        }
        Ok(Parsed::Command(std::mem::take(&mut self.argv)))
    }
}

enum Parsed {
    Need,
    Empty,
    Command(Vec<Bytes>),
}

fn memchr(b: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&c| c == b)
}

/// Redis replaces CR and LF in error texts so the reply stays one line.
fn sanitize(mut v: Vec<u8>) -> Vec<u8> {
    for c in v.iter_mut() {
        if *c == b'\r' || *c == b'\n' {
            *c = b' ';
        }
    }
    v
}

fn inline(buf: &mut BytesMut) -> Result<Parsed, ProtocolError> {
    let Some(nl) = memchr(b'\n', buf) else {
        if buf.len() > INLINE_MAX_SIZE {
            return Err(ProtocolError::new("too big inline request"));
        }
        return Ok(Parsed::Need);
    };
    let end = if nl > 0 && buf[nl - 1] == b'\r' { nl - 1 } else { nl };
    let argv = split_args(&buf[..end]).ok_or_else(|| ProtocolError::new("unbalanced quotes in request"))?;
    buf.advance(nl + 1);
    if argv.is_empty() {
        return Ok(Parsed::Empty);
    }
    Ok(Parsed::Command(argv.into_iter().map(Bytes::from).collect()))
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn hex_val(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// `sdssplitargs` from Redis's sds.c: whitespace-separated tokens, with
/// "double quotes" (C escapes and \xHH) and 'single quotes' (only \').
/// Returns `None` on unbalanced quotes, or a closing quote glued to more text.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    // The C code works on a NUL-terminated string: a NUL ends the line.
    let line = match memchr(0, line) {
        Some(i) => &line[..i],
        None => line,
    };
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let mut args = Vec::new();
    let mut p = 0;
    loop {
        while p < line.len() && is_space(line[p]) {
            p += 1;
        }
        if p >= line.len() {
            return Some(args);
        }
        let (mut in_dq, mut in_sq) = (false, false);
        let mut cur = Vec::new();
        loop {
            let c = at(p);
            if in_dq {
                if c == b'\\' && at(p + 1) == b'x' && hex_val(at(p + 2)).is_some() && hex_val(at(p + 3)).is_some() {
                    cur.push(hex_val(at(p + 2)).unwrap() * 16 + hex_val(at(p + 3)).unwrap());
                    p += 3;
                } else if c == b'\\' && at(p + 1) != 0 {
                    p += 1;
                    cur.push(match at(p) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if c == b'"' {
                    if at(p + 1) != 0 && !is_space(at(p + 1)) {
                        return None;
                    }
                    p += 1;
                    break;
                } else if c == 0 {
                    return None;
                } else {
                    cur.push(c);
                }
            } else if in_sq {
                if c == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    cur.push(b'\'');
                } else if c == b'\'' {
                    if at(p + 1) != 0 && !is_space(at(p + 1)) {
                        return None;
                    }
                    p += 1;
                    break;
                } else if c == 0 {
                    return None;
                } else {
                    cur.push(c);
                }
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => break,
                    b'"' => in_dq = true,
                    b'\'' => in_sq = true,
                    other => cur.push(other),
                }
            }
            p += 1;
        }
        args.push(cur);
    }
}
