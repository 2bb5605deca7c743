//! Conversions between command replies and Lua values, as Redis 7.0's
//! `script_lua.c` does them (`redisProtocolToLuaType`,
//! `luaReplyToRedisReply`, `luaPushErrorBuff`).

use bytes::Bytes;
use mlua::{Lua, Table, Value};
use pgkv_resp::{Frame, Protocol};

/// `luaPushErrorBuff`: `-CODE msg` keeps its code, anything else gets `ERR`.
/// The table is `{err = "CODE msg"}`.
pub fn error_table(lua: &Lua, buf: &[u8]) -> mlua::Result<Table> {
    // sds strings built with sdsnew stop at a NUL, as lua_pushstring does.
    let buf = &buf[..buf.iter().position(|&c| c == 0).unwrap_or(buf.len())];
    let (code, msg): (&[u8], &[u8]) = match buf.strip_prefix(b"-") {
        Some(rest) => match rest.iter().position(|&c| c == b' ') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (b"ERR", rest),
        },
        None => (b"ERR", buf),
    };
    let trimmed = trim_crlf(msg);
    let mut text = code.to_vec();
    text.push(b' ');
    text.extend_from_slice(trimmed);
    let t = lua.create_table()?;
    t.raw_set("err", lua.create_string(&text)?)?;
    Ok(t)
}

/// `sdstrim(s, "\r\n")`: both ends.
fn trim_crlf(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|c| *c != b'\r' && *c != b'\n').unwrap_or(s.len());
    let end = s.iter().rposition(|c| *c != b'\r' && *c != b'\n').map(|i| i + 1).unwrap_or(start);
    &s[start..end.max(start)]
}

/// A command's error reply as `redis.call` sees it.
pub fn reply_error_table(lua: &Lua, text: &[u8]) -> mlua::Result<Table> {
    let mut buf = b"-".to_vec();
    buf.extend_from_slice(text);
    let t = error_table(lua, &buf)?;
    t.raw_set("ignore_error_stats_update", true)?;
    Ok(t)
}

/// A command reply as a Lua value, in the protocol the script chose with
/// `redis.setresp` (RESP2 by default): Redis converts the reply bytes its
/// fake client received, so the reply goes through the wire form (RESP2
/// flattens maps, sets and doubles; RESP3 nulls are all `_`, i.e. nil).
pub fn reply_to_lua(lua: &Lua, frame: &Frame, resp: u8) -> mlua::Result<Value> {
    let proto = if resp == 3 { Protocol::Resp3 } else { Protocol::Resp2 };
    let bytes = pgkv_resp::to_bytes(frame, proto);
    let wire = match pgkv_resp::decode(&bytes) {
        Ok(Some((f, _))) => f,
        _ => Frame::Null,
    };
    to_lua(lua, &wire)
}

fn single(lua: &Lua, key: &str, value: impl mlua::IntoLua) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set(key, value)?;
    Ok(Value::Table(t))
}

fn to_lua(lua: &Lua, frame: &Frame) -> mlua::Result<Value> {
    Ok(match frame {
        Frame::Integer(n) => Value::Number(*n as f64),
        Frame::Bulk(b) => Value::String(lua.create_string(b)?),
        Frame::Simple(s) => single(lua, "ok", lua.create_string(s)?)?,
        Frame::Error(e) => Value::Table(reply_error_table(lua, e)?),
        Frame::NullBulk | Frame::NullArray => Value::Boolean(false),
        Frame::Null => Value::Nil,
        Frame::Array(items) | Frame::Push(items) | Frame::Sequence(items) => {
            let t = lua.create_table()?;
            for (i, item) in items.iter().enumerate() {
                t.raw_set(i + 1, to_lua(lua, item)?)?;
            }
            Value::Table(t)
        }
        Frame::Map(pairs) => {
            let inner = lua.create_table()?;
            for (k, v) in pairs {
                inner.set(to_lua(lua, k)?, to_lua(lua, v)?)?;
            }
            single(lua, "map", inner)?
        }
        Frame::Set(items) => {
            let inner = lua.create_table()?;
            for item in items {
                inner.set(to_lua(lua, item)?, true)?;
            }
            single(lua, "set", inner)?
        }
        Frame::Boolean(b) => Value::Boolean(*b),
        Frame::Double(d) => single(lua, "double", *d)?,
        Frame::BigNumber(s) => single(lua, "big_number", lua.create_string(s)?)?,
        Frame::Verbatim { format, text } => {
            let inner = lua.create_table()?;
            inner.raw_set("string", lua.create_string(text)?)?;
            inner.raw_set("format", lua.create_string(format)?)?;
            single(lua, "verbatim_string", inner)?
        }
        Frame::Attribute(_, inner) => to_lua(lua, inner)?,
    })
}

fn lua_bytes(lua: &Lua, v: &Value) -> mlua::Result<Option<Vec<u8>>> {
    Ok(match v {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Integer(_) | Value::Number(_) => lua.coerce_string(v.clone())?.map(|s| s.as_bytes().to_vec()),
        _ => None,
    })
}

/// What `luaExtractErrorInformation` reads from an error table (with
/// metamethods, as lua_getfield does).
pub struct ErrorInfo {
    pub msg: Option<Vec<u8>>,
    pub source: Option<Vec<u8>>,
    pub line: Option<Vec<u8>>,
}

pub fn error_info(lua: &Lua, t: &Table) -> mlua::Result<ErrorInfo> {
    Ok(ErrorInfo {
        msg: lua_bytes(lua, &t.get::<Value>("err")?)?,
        source: lua_bytes(lua, &t.get::<Value>("source")?)?,
        line: lua_bytes(lua, &t.get::<Value>("line")?)?,
    })
}

/// Redis's addReplyErrorFormat: trailing CR/LF trimmed, the rest turned
/// into spaces; "-ERR " added unless the text starts with '-'.
fn format_error(text: &[u8]) -> Frame {
    let trimmed = trim_crlf(text);
    // trim_crlf also trims leading CR/LF; Redis only trims both ends too.
    let mut v: Vec<u8> = trimmed.iter().map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c }).collect();
    if v.first() == Some(&b'-') {
        v.remove(0);
    } else {
        v.splice(0..0, b"ERR ".iter().copied());
    }
    Frame::Error(Bytes::from(v))
}

/// `luaReplyToRedisReply`: a script's return value as the client's reply.
/// `script_resp` is the protocol the script selected (booleans depend on it).
pub fn lua_to_reply(lua: &Lua, v: &Value, script_resp: u8) -> mlua::Result<Frame> {
    Ok(match v {
        Value::String(s) => Frame::Bulk(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Boolean(b) => {
            if script_resp == 2 {
                if *b {
                    Frame::Integer(1)
                } else {
                    Frame::NullBulk
                }
            } else {
                Frame::Boolean(*b)
            }
        }
        Value::Integer(i) => Frame::Integer(*i as f64 as i64),
        Value::Number(n) => Frame::Integer(double_to_ll(*n)),
        Value::Table(t) => table_to_reply(lua, t, script_resp)?,
        _ => Frame::NullBulk,
    })
}

/// C's `(long long)` cast of a double, as x86-64 does it: out of range and
/// NaN give i64::MIN.
fn double_to_ll(n: f64) -> i64 {
    if n.is_nan() || n >= 9.223372036854775807e18 || n < -9.223372036854775808e18 {
        i64::MIN
    } else {
        n as i64
    }
}

fn table_to_reply(lua: &Lua, t: &Table, script_resp: u8) -> mlua::Result<Frame> {
    if let Value::String(_) = t.raw_get::<Value>("err")? {
        let info = error_info(lua, t)?;
        let mut text = b"-".to_vec();
        text.extend_from_slice(&info.msg.unwrap_or_default());
        return Ok(format_error(&text));
    }
    if let Value::String(s) = t.raw_get::<Value>("ok")? {
        let status: Vec<u8> = s.as_bytes().iter().map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c }).collect();
        // addReplyStatusSafe builds the status from a C string.
        let end = status.iter().position(|&c| c == 0).unwrap_or(status.len());
        return Ok(Frame::Simple(Bytes::copy_from_slice(&status[..end])));
    }
    match t.raw_get::<Value>("double")? {
        Value::Number(d) => return Ok(Frame::Double(d)),
        Value::Integer(i) => return Ok(Frame::Double(i as f64)),
        _ => {}
    }
    if let Value::String(s) = t.raw_get::<Value>("big_number")? {
        let b: Vec<u8> = s.as_bytes().iter().map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c }).collect();
        return Ok(Frame::BigNumber(Bytes::from(b)));
    }
    if let Value::Table(vt) = t.raw_get::<Value>("verbatim_string")? {
        if let Value::String(format) = vt.raw_get::<Value>("format")? {
            if let Value::String(text) = vt.raw_get::<Value>("string")? {
                let f = format.as_bytes();
                let mut fmt = [b' '; 3];
                for (i, c) in f.iter().take(3).enumerate() {
                    fmt[i] = *c;
                }
                return Ok(Frame::Verbatim { format: fmt, text: Bytes::copy_from_slice(&text.as_bytes()) });
            }
        }
    }
    if let Value::Table(m) = t.raw_get::<Value>("map")? {
        let mut raw: Vec<(Value, Value)> = Vec::new();
        m.for_each::<Value, Value>(|k, v| {
            raw.push((k, v));
            Ok(())
        })?;
        let mut pairs = Vec::with_capacity(raw.len());
        for (k, v) in raw {
            pairs.push((lua_to_reply(lua, &k, script_resp)?, lua_to_reply(lua, &v, script_resp)?));
        }
        return Ok(Frame::Map(pairs));
    }
    if let Value::Table(s) = t.raw_get::<Value>("set")? {
        let mut raw: Vec<Value> = Vec::new();
        s.for_each::<Value, Value>(|k, _| {
            raw.push(k);
            Ok(())
        })?;
        let mut items = Vec::with_capacity(raw.len());
        for k in raw {
            items.push(lua_to_reply(lua, &k, script_resp)?);
        }
        return Ok(Frame::Set(items));
    }
    let mut items = Vec::new();
    let mut j = 1;
    loop {
        let v = t.raw_get::<Value>(j)?;
        if v == Value::Nil {
            break;
        }
        items.push(lua_to_reply(lua, &v, script_resp)?);
        j += 1;
    }
    Ok(Frame::Array(items))
}

/// A script error as the client sees it (`luaCallFunction`): an error
/// table gives `-<err> script: <name>, on <source>:<line>.`, anything else
/// `-ERR Error running script <name>, <message>`.
pub fn script_error(lua: &Lua, err: &Value, name: &str) -> mlua::Result<Frame> {
    match err {
        Value::Table(t) => {
            let info = error_info(lua, t)?;
            let mut text = b"-".to_vec();
            text.extend_from_slice(&info.msg.unwrap_or_default());
            if let (Some(line), Some(source)) = (info.line, info.source) {
                text.extend_from_slice(format!(" script: {name}, on ").as_bytes());
                text.extend_from_slice(&source);
                text.push(b':');
                text.extend_from_slice(&line);
                text.push(b'.');
            }
            // addReplyErrorSdsExSafe: newlines become spaces, nothing trimmed.
            let v: Vec<u8> = text[1..].iter().map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c }).collect();
            Ok(Frame::Error(Bytes::from(v)))
        }
        other => {
            let msg = match other {
                Value::String(_) | Value::Integer(_) | Value::Number(_) => lua_bytes(lua, other)?.unwrap_or_default(),
                _ => b"execution failure".to_vec(),
            };
            let mut text = format!("Error running script {name}, ").into_bytes();
            text.extend_from_slice(&msg[..msg.len().min(100)]);
            text.push(b'\n');
            Ok(format_error(&text))
        }
    }
}

/// `luaArgsToRedisArgv`: numbers print as `%.17g`; anything but strings
/// and numbers is refused.
pub fn lua_argv(args: &[Value]) -> Result<Vec<Bytes>, &'static str> {
    if args.is_empty() {
        return Err("Please specify at least one argument for this redis lib call");
    }
    let mut argv = Vec::with_capacity(args.len());
    for a in args {
        argv.push(match a {
            Value::String(s) => Bytes::copy_from_slice(&s.as_bytes()),
            Value::Integer(i) => Bytes::from(pgkv_resp::num::format_g(*i as f64, 17)),
            Value::Number(n) => Bytes::from(pgkv_resp::num::format_g(*n, 17)),
            _ => return Err("Lua redis lib command arguments must be strings or integers"),
        });
    }
    Ok(argv)
}
