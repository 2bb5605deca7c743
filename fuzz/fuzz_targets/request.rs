//! The request parser on arbitrary bytes, fed in arbitrary pieces: it never
//! panics, answers a protocol error or commands, and parsing the same bytes
//! whole or split gives the same commands.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use pgkv_resp::{Limits, RequestParser};

fn parse_all(chunks: &[&[u8]], limits: Limits) -> (Vec<Vec<bytes::Bytes>>, Option<Vec<u8>>) {
    let mut parser = RequestParser::new();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match parser.next(&mut buf, limits) {
                Ok(Some(cmd)) => {
                    assert!(!cmd.is_empty(), "a command has a name");
                    out.push(cmd);
                }
                Ok(None) => break,
                Err(e) => {
                    let text = e.reply_text();
                    assert!(text.starts_with(b"ERR Protocol error"), "{:?}", String::from_utf8_lossy(&text));
                    return (out, Some(text));
                }
            }
        }
    }
    (out, None)
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits { auth_required: data.first().is_some_and(|b| b & 1 == 1), max_bulk_len: 1 << 20 };
    let whole = parse_all(&[data], limits);
    let cut = data.len() / 3;
    let (a, rest) = data.split_at(cut);
    let (b, c) = rest.split_at(rest.len() / 2);
    let split = parse_all(&[a, b, c], limits);
    assert_eq!(whole, split, "splitting the input changed what was parsed");
});
