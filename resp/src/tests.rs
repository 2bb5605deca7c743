use crate::*;
use bytes::{Bytes, BytesMut};

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn sample_frames() -> Vec<Frame> {
    vec![
        Frame::simple("OK"),
        Frame::error("ERR something bad"),
        Frame::Integer(0),
        Frame::Integer(-42),
        Frame::Integer(i64::MAX),
        Frame::Bulk(Bytes::from_static(b"\x00\xff\r\nbinary")),
        Frame::Bulk(Bytes::new()),
        Frame::NullBulk,
        Frame::NullArray,
        Frame::Array(vec![]),
        Frame::Array(vec![Frame::Integer(1), Frame::Array(vec![Frame::bulk(b("nested")), Frame::NullBulk])]),
        Frame::Map(vec![(Frame::bulk(b("k")), Frame::Integer(1)), (Frame::bulk(b("m")), Frame::Map(vec![]))]),
        Frame::Set(vec![Frame::bulk(b("a")), Frame::bulk(b("b"))]),
        Frame::Push(vec![Frame::bulk(b("message")), Frame::bulk(b("ch")), Frame::bulk(b("hi"))]),
        Frame::Double(1.5),
        Frame::Double(f64::INFINITY),
        Frame::Double(f64::NEG_INFINITY),
        Frame::Boolean(true),
        Frame::Boolean(false),
        Frame::BigNumber(b("3492890328409238509324850943850943825024385")),
        Frame::Verbatim { format: *b"txt", text: b("Some string") },
    ]
}

#[test]
fn resp3_encoding_is_exact() {
    let cases: Vec<(Frame, &[u8])> = vec![
        (Frame::simple("OK"), b"+OK\r\n"),
        (Frame::error("ERR x"), b"-ERR x\r\n"),
        (Frame::Integer(-7), b":-7\r\n"),
        (Frame::bulk(b("ab")), b"$2\r\nab\r\n"),
        (Frame::NullBulk, b"_\r\n"),
        (Frame::NullArray, b"_\r\n"),
        (Frame::Map(vec![(Frame::bulk(b("a")), Frame::Integer(1))]), b"%1\r\n$1\r\na\r\n:1\r\n"),
        (Frame::Set(vec![Frame::Integer(1)]), b"~1\r\n:1\r\n"),
        (Frame::Push(vec![Frame::Integer(1)]), b">1\r\n:1\r\n"),
        (Frame::Double(1.1), b",1.1000000000000001\r\n"),
        (Frame::Double(f64::NEG_INFINITY), b",-inf\r\n"),
        (Frame::Boolean(true), b"#t\r\n"),
        (Frame::BigNumber(b("123")), b"(123\r\n"),
        (Frame::Verbatim { format: *b"txt", text: b("hi") }, b"=6\r\ntxt:hi\r\n"),
    ];
    for (frame, wire) in cases {
        assert_eq!(&to_bytes(&frame, Protocol::Resp3)[..], wire, "{frame:?}");
    }
}

#[test]
fn resp2_downgrades_resp3_types() {
    let cases: Vec<(Frame, &[u8])> = vec![
        (Frame::NullBulk, b"$-1\r\n"),
        (Frame::NullArray, b"*-1\r\n"),
        (Frame::Map(vec![(Frame::bulk(b("a")), Frame::Integer(1))]), b"*2\r\n$1\r\na\r\n:1\r\n"),
        (Frame::Set(vec![Frame::Integer(1)]), b"*1\r\n:1\r\n"),
        (Frame::Push(vec![Frame::Integer(1)]), b"*1\r\n:1\r\n"),
        (Frame::Double(2.0), b"$1\r\n2\r\n"),
        (Frame::Double(f64::INFINITY), b"$3\r\ninf\r\n"),
        (Frame::Boolean(false), b":0\r\n"),
        (Frame::BigNumber(b("123")), b"$3\r\n123\r\n"),
        (Frame::Verbatim { format: *b"txt", text: b("hi") }, b"$2\r\nhi\r\n"),
    ];
    for (frame, wire) in cases {
        assert_eq!(&to_bytes(&frame, Protocol::Resp2)[..], wire, "{frame:?}");
    }
}

/// RESP3 has one null, so a round trip turns both RESP2 nulls into it.
fn nulls_as_resp3(f: Frame) -> Frame {
    match f {
        Frame::NullBulk | Frame::NullArray => Frame::Null,
        Frame::Array(v) => Frame::Array(v.into_iter().map(nulls_as_resp3).collect()),
        f => f,
    }
}

#[test]
fn every_resp3_type_round_trips() {
    for frame in sample_frames() {
        let wire = to_bytes(&frame, Protocol::Resp3);
        let (back, used) = decode(&wire).unwrap().unwrap();
        assert_eq!(used, wire.len());
        assert_eq!(back, nulls_as_resp3(frame));
    }
}

#[test]
fn decoder_waits_at_every_split_point() {
    let mut wire = BytesMut::new();
    for frame in sample_frames() {
        encode(&frame, Protocol::Resp3, &mut wire);
    }
    let frames = sample_frames().len();
    for split in 0..wire.len() {
        // Feed the first `split` bytes, then the rest, and read every frame.
        let mut buf = wire[..split].to_vec();
        let mut got = 0;
        let mut drain = |buf: &mut Vec<u8>, got: &mut usize| {
            while let Some((_, used)) = decode(buf).unwrap() {
                buf.drain(..used);
                *got += 1;
            }
        };
        drain(&mut buf, &mut got);
        buf.extend_from_slice(&wire[split..]);
        drain(&mut buf, &mut got);
        assert_eq!(got, frames, "split at {split}");
        assert!(buf.is_empty());
    }
}

#[test]
fn decoder_rejects_malformed_frames() {
    for bad in [&b"?x\r\n"[..], b":12a\r\n", b"$-2\r\n", b"$3\r\nabcXY", b"#x\r\n", b",abc\r\n", b"*-5\r\n", b"=2\r\nab\r\n", b"(1x\r\n"] {
        assert!(decode(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
    }
    // Truncated input is not an error: it is "need more".
    assert_eq!(decode(b"$5\r\nab").unwrap(), None);
    assert_eq!(decode(b"*2\r\n:1\r\n").unwrap(), None);
}

fn parse_all(input: &[u8]) -> (Vec<Vec<Bytes>>, Option<Vec<u8>>) {
    let mut p = RequestParser::new();
    let mut buf = BytesMut::from(input);
    let mut cmds = Vec::new();
    loop {
        match p.next(&mut buf, Limits::default()) {
            Ok(Some(c)) => cmds.push(c),
            Ok(None) => return (cmds, None),
            Err(e) => return (cmds, Some(e.reply_text())),
        }
    }
}

#[test]
fn multibulk_requests_parse_at_every_split_point() {
    let mut wire = BytesMut::new();
    encode_request(&[&b"SET"[..], b"k\x00\xff", b"v\r\nv"], &mut wire);
    encode_request(&[&b"GET"[..], b""], &mut wire);
    wire.extend_from_slice(b"PING\r\n");
    wire.extend_from_slice(b"*0\r\n");
    encode_request(&[&b"ECHO"[..], b"x"], &mut wire);
    let expected: Vec<Vec<Bytes>> = vec![
        vec![b("SET"), Bytes::from_static(b"k\x00\xff"), b("v\r\nv")],
        vec![b("GET"), b("")],
        vec![b("PING")],
        vec![b("ECHO"), b("x")],
    ];
    for split in 0..=wire.len() {
        let mut p = RequestParser::new();
        let mut buf = BytesMut::from(&wire[..split]);
        let mut got = Vec::new();
        while let Some(c) = p.next(&mut buf, Limits::default()).unwrap() {
            got.push(c);
        }
        buf.extend_from_slice(&wire[split..]);
        while let Some(c) = p.next(&mut buf, Limits::default()).unwrap() {
            got.push(c);
        }
        assert_eq!(got, expected, "split at {split}");
        assert!(buf.is_empty());
    }
}

#[test]
fn byte_at_a_time_feeding_parses_the_same() {
    let mut wire = BytesMut::new();
    encode_request(&[&b"SET"[..], &vec![b'x'; 5000][..]], &mut wire);
    let mut p = RequestParser::new();
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for &byte in wire.iter() {
        buf.extend_from_slice(&[byte]);
        while let Some(c) = p.next(&mut buf, Limits::default()).unwrap() {
            got.push(c);
        }
    }
    assert_eq!(got.len(), 1);
    assert_eq!(got[0][1].len(), 5000);
}

#[test]
fn inline_commands_follow_sdssplitargs() {
    let (cmds, err) = parse_all(b"set k \"a b\\x41\\n\" 'it\\'s'\r\n  \r\nget  k\n");
    assert_eq!(err, None);
    assert_eq!(cmds, vec![vec![b("set"), b("k"), b("a bA\n"), b("it's")], vec![b("get"), b("k")]]);
    let (_, err) = parse_all(b"set k \"abc\r\n");
    assert_eq!(err.unwrap(), b"ERR Protocol error: unbalanced quotes in request");
    let (_, err) = parse_all(b"set k \"abc\"x\r\n");
    assert_eq!(err.unwrap(), b"ERR Protocol error: unbalanced quotes in request");
}

#[test]
fn malformed_requests_get_redis_protocol_errors() {
    let cases: Vec<(&[u8], &str)> = vec![
        (b"*abc\r\n", "invalid multibulk length"),
        (b"*3000000000\r\n", "invalid multibulk length"),
        (b"*1\r\n$-1\r\n", "invalid bulk length"),
        (b"*1\r\n$x\r\n", "invalid bulk length"),
        (b"*1\r\n$600000000\r\n", "invalid bulk length"),
        (b"*1\r\n:1\r\n", "expected '$', got ':'"),
        (b"*2\r\n$1\r\na\r\n+x\r\n", "expected '$', got '+'"),
    ];
    for (input, msg) in cases {
        let (_, err) = parse_all(input);
        assert_eq!(String::from_utf8(err.expect("an error")).unwrap(), format!("ERR Protocol error: {msg}"));
    }
    let (_, err) = parse_all(&vec![b'a'; 70 * 1024]);
    assert_eq!(err.unwrap(), b"ERR Protocol error: too big inline request");
    let mut big = b"*".to_vec();
    big.extend(vec![b'1'; 70 * 1024]);
    assert_eq!(parse_all(&big).1.unwrap(), b"ERR Protocol error: too big mbulk count string");
    let mut big = b"*1\r\n$".to_vec();
    big.extend(vec![b'1'; 70 * 1024]);
    assert_eq!(parse_all(&big).1.unwrap(), b"ERR Protocol error: too big bulk count string");
}

#[test]
fn commands_before_a_protocol_error_are_still_parsed() {
    let (cmds, err) = parse_all(b"PING\r\n*1\r\n$4\r\nPING\r\n*x\r\n");
    assert_eq!(cmds.len(), 2);
    assert!(err.is_some());
}

#[test]
fn unauthenticated_clients_cannot_send_large_requests() {
    let limits = Limits { auth_required: true, ..Limits::default() };
    let mut p = RequestParser::new();
    let mut buf = BytesMut::from(&b"*11\r\n"[..]);
    assert_eq!(p.next(&mut buf, limits).unwrap_err().reply_text(), b"ERR Protocol error: unauthenticated multibulk length");
    let mut p = RequestParser::new();
    let mut buf = BytesMut::from(&b"*1\r\n$16385\r\n"[..]);
    assert_eq!(p.next(&mut buf, limits).unwrap_err().reply_text(), b"ERR Protocol error: unauthenticated bulk length");
}

/// Seeded random garbage, and random mutations of valid requests: the
/// parser must answer a command, "need more", or a protocol error, and never
/// panic or loop.
#[test]
fn random_input_never_panics_the_parser() {
    let mut state: u64 = 0x9e3779b97f4a7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut valid = BytesMut::new();
    encode_request(&[&b"SET"[..], b"key", b"value"], &mut valid);
    for round in 0..20_000 {
        let mut input: Vec<u8> = if round % 2 == 0 {
            (0..(next() % 64)).map(|_| b"*$\r\n0123456789-+:abc \"'\\x"[(next() % 24) as usize]).collect()
        } else {
            valid.to_vec()
        };
        if round % 2 == 1 {
            for _ in 0..(next() % 4 + 1) {
                let i = (next() as usize) % input.len();
                input[i] = next() as u8;
            }
        }
        let mut p = RequestParser::new();
        let mut buf = BytesMut::from(&input[..]);
        for _ in 0..input.len() + 2 {
            match p.next(&mut buf, Limits::default()) {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break,
            }
        }
        let _ = decode(&input);
    }
}

// Found by fuzzing (fuzz/fuzz_targets/decode.rs).
#[test]
fn a_signed_nan_decodes_to_the_one_nan() {
    let (f, _) = crate::decode(b",-naN\r\n").unwrap().unwrap();
    assert_eq!(crate::to_bytes(&f, crate::Protocol::Resp3).as_ref(), b",nan\r\n");
}

#[test]
fn an_error_with_a_newline_never_breaks_the_framing() {
    let f = crate::Frame::Error(bytes::Bytes::from_static(b"ERR a\r\nb"));
    assert_eq!(crate::to_bytes(&f, crate::Protocol::Resp3).as_ref(), b"!8\r\nERR a\r\nb\r\n");
    assert_eq!(crate::to_bytes(&f, crate::Protocol::Resp2).as_ref(), b"-ERR a  b\r\n");
    let s = crate::Frame::Simple(bytes::Bytes::from_static(b"a\nb"));
    assert_eq!(crate::to_bytes(&s, crate::Protocol::Resp2).as_ref(), b"+a b\r\n");
}
