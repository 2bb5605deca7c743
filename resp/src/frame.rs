//! The RESP value type shared by replies (what handlers return) and by the
//! client-side decoder (what tests read back).
//!
//! A handler builds the richest type it means (a map, a set, a double); the
//! encoder downgrades it when the connection speaks RESP2. The three null
//! variants exist because RESP2 spells "no bulk" and "no array" differently
//! (`$-1` and `*-1`) while RESP3 has one `_`.

use bytes::Bytes;

#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// `+OK`: a status line. Never contains CR or LF.
    Simple(Bytes),
    /// `-ERR message`: the full text, prefix included.
    Error(Bytes),
    Integer(i64),
    Bulk(Bytes),
    /// RESP2 `$-1`, RESP3 `_`.
    NullBulk,
    /// RESP2 `*-1`, RESP3 `_`.
    NullArray,
    /// RESP3 `_` as read off the wire (a decoder-only distinction).
    Null,
    Array(Vec<Frame>),
    /// RESP3 `%`; RESP2 sends the pairs flattened into an array.
    Map(Vec<(Frame, Frame)>),
    /// RESP3 `~`; RESP2 sends an array.
    Set(Vec<Frame>),
    /// RESP3 `>`; RESP2 sends an array.
    Push(Vec<Frame>),
    /// RESP3 `,`; RESP2 sends a bulk string formatted as Redis 7.0 does (`%.17g`).
    Double(f64),
    /// RESP3 `#t`/`#f`; RESP2 sends `:1`/`:0`.
    Boolean(bool),
    /// RESP3 `(`; RESP2 sends a bulk string.
    BigNumber(Bytes),
    /// RESP3 `=` with a three-letter format (`txt`, `mkd`); RESP2 sends a bulk string.
    Verbatim { format: [u8; 3], text: Bytes },
    /// Several top-level replies to one command, sent one after another
    /// (SUBSCRIBE a b answers once per channel). Only handlers produce it.
    Sequence(Vec<Frame>),
    /// RESP3 `|`: attributes that precede a reply. Only the decoder produces it.
    Attribute(Vec<(Frame, Frame)>, Box<Frame>),
}

impl Frame {
    pub fn ok() -> Frame {
        Frame::Simple(Bytes::from_static(b"OK"))
    }

    pub fn simple(s: &'static str) -> Frame {
        Frame::Simple(Bytes::from_static(s.as_bytes()))
    }

    pub fn bulk(b: impl Into<Bytes>) -> Frame {
        Frame::Bulk(b.into())
    }

    /// An error reply. `text` must carry its prefix (`ERR`, `WRONGTYPE`, ...).
    pub fn error(text: impl Into<Bytes>) -> Frame {
        Frame::Error(text.into())
    }

    /// `+OK`
    pub fn is_ok_status(&self) -> bool {
        matches!(self, Frame::Simple(s) if s.as_ref() == b"OK")
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Frame::Error(_))
    }
}
