//! Frame -> bytes, for the protocol version the connection negotiated.

use crate::frame::Frame;
use crate::num::format_double_reply;
use bytes::{BufMut, BytesMut};

/// The protocol a connection speaks. It belongs to the connection, never to a
/// handler: handlers build one `Frame` and this module downgrades it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Resp2,
    Resp3,
}

impl Protocol {
    pub fn version(self) -> i64 {
        match self {
            Protocol::Resp2 => 2,
            Protocol::Resp3 => 3,
        }
    }
}

fn put_line(out: &mut BytesMut, prefix: u8, body: &[u8]) {
    out.reserve(body.len() + 3);
    out.put_u8(prefix);
    out.put_slice(body);
    out.put_slice(b"\r\n");
}

fn put_len(out: &mut BytesMut, prefix: u8, n: i64) {
    put_line(out, prefix, itoa::Buffer::new().format(n).as_bytes());
}

fn has_newline(s: &[u8]) -> bool {
    s.iter().any(|c| *c == b'\r' || *c == b'\n')
}

fn one_line(s: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if has_newline(s) {
        std::borrow::Cow::Owned(s.iter().map(|c| if *c == b'\r' || *c == b'\n' { b' ' } else { *c }).collect())
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

fn put_bulk(out: &mut BytesMut, body: &[u8]) {
    let mut digits = itoa::Buffer::new();
    let len = digits.format(body.len()).as_bytes();
    out.reserve(len.len() + body.len() + 5);
    out.put_u8(b'$');
    out.put_slice(len);
    out.put_slice(b"\r\n");
    out.put_slice(body);
    out.put_slice(b"\r\n");
}

/// Appends the wire form of `frame` to `out`.
pub fn encode(frame: &Frame, proto: Protocol, out: &mut BytesMut) {
    let resp3 = proto == Protocol::Resp3;
    match frame {
        // A line cannot hold CR or LF (replies never do; a frame decoded
        // from a blob error might): RESP3 has blob errors for that, RESP2
        // gets the line with spaces, as Redis sanitizes error texts.
        Frame::Simple(s) => put_line(out, b'+', &one_line(s)),
        Frame::Error(s) if resp3 && has_newline(s) => {
            put_len(out, b'!', s.len() as i64);
            out.put_slice(s);
            out.put_slice(b"\r\n");
        }
        Frame::Error(s) => put_line(out, b'-', &one_line(s)),
        Frame::Integer(n) => put_len(out, b':', *n),
        Frame::Bulk(b) => put_bulk(out, b),
        Frame::NullBulk if !resp3 => out.put_slice(b"$-1\r\n"),
        Frame::NullArray if !resp3 => out.put_slice(b"*-1\r\n"),
        // A RESP3 null read off the wire has no RESP2 twin; `$-1` is what Redis sends.
        Frame::Null if !resp3 => out.put_slice(b"$-1\r\n"),
        Frame::NullBulk | Frame::NullArray | Frame::Null => out.put_slice(b"_\r\n"),
        Frame::Array(items) => encode_seq(b'*', items, proto, out),
        Frame::Set(items) => encode_seq(if resp3 { b'~' } else { b'*' }, items, proto, out),
        Frame::Push(items) => encode_seq(if resp3 { b'>' } else { b'*' }, items, proto, out),
        Frame::Sequence(frames) => {
            for f in frames {
                encode(f, proto, out);
            }
        }
        Frame::Map(pairs) => {
            if resp3 {
                put_len(out, b'%', pairs.len() as i64);
            } else {
                put_len(out, b'*', 2 * pairs.len() as i64);
            }
            for (k, v) in pairs {
                encode(k, proto, out);
                encode(v, proto, out);
            }
        }
        Frame::Double(d) => {
            let text = format_double_reply(*d);
            if resp3 {
                put_line(out, b',', text.as_bytes());
            } else {
                put_bulk(out, text.as_bytes());
            }
        }
        Frame::Boolean(b) => match (resp3, b) {
            (true, true) => out.put_slice(b"#t\r\n"),
            (true, false) => out.put_slice(b"#f\r\n"),
            (false, true) => out.put_slice(b":1\r\n"),
            (false, false) => out.put_slice(b":0\r\n"),
        },
        Frame::BigNumber(n) => {
            if resp3 {
                put_line(out, b'(', n);
            } else {
                put_bulk(out, n);
            }
        }
        Frame::Verbatim { format, text } => {
            if resp3 {
                put_len(out, b'=', text.len() as i64 + 4);
                out.put_slice(format);
                out.put_u8(b':');
                out.put_slice(text);
                out.put_slice(b"\r\n");
            } else {
                put_bulk(out, text);
            }
        }
        Frame::Attribute(attrs, inner) => {
            // Attributes are out-of-band; RESP2 has no way to carry them.
            if resp3 {
                put_len(out, b'|', attrs.len() as i64);
                for (k, v) in attrs {
                    encode(k, proto, out);
                    encode(v, proto, out);
                }
            }
            encode(inner, proto, out);
        }
    }
}

fn encode_seq(prefix: u8, items: &[Frame], proto: Protocol, out: &mut BytesMut) {
    // Room for the whole of a flat sequence at once (a bulk string's
    // header is at most 14 bytes), rather than the buffer growing and
    // moving as it fills: LRANGE's hundred elements grew it several times.
    let room: usize = items.iter().map(|f| if let Frame::Bulk(b) = f { b.len() + 16 } else { 16 }).sum();
    out.reserve(room + 16);
    put_len(out, prefix, items.len() as i64);
    for item in items {
        encode(item, proto, out);
    }
}

/// Convenience for tests and for callers that want a fresh buffer.
pub fn to_bytes(frame: &Frame, proto: Protocol) -> BytesMut {
    let mut out = BytesMut::new();
    encode(frame, proto, &mut out);
    out
}

/// Encodes a command as a multibulk request, as clients send it.
pub fn encode_request<A: AsRef<[u8]>>(args: &[A], out: &mut BytesMut) {
    put_len(out, b'*', args.len() as i64);
    for a in args {
        put_bulk(out, a.as_ref());
    }
}
