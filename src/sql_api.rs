//! The SQL face of pgkv: `kv.*` functions that run Redis commands inside the
//! caller's own transaction, through the same dispatcher as RESP clients.
//!
//! - Typed functions for common commands, in text and bytea forms.
//! - `kv.call(VARIADIC text[])` for everything else, returning jsonb.
//! - `kv.eval` and `kv.fcall` for scripts and functions, returning jsonb.
//! - A Redis error reply becomes a Postgres ERROR (SQLSTATE 22000,
//!   data_exception) whose message is Redis's text.
//! - The Redis database is `pgkv.sql_db` (default 0).

use crate::cmd::{self, Ctx};
use crate::session::{Origin, Session};
use crate::store::Store;
use bytes::Bytes;
use pgkv_resp::Frame;
use pgrx::prelude::*;
use pgrx::{JsonB, VariadicArray};
use serde_json::{Map, Value};

/// Runs one command for SQL. The session lives for this call only.
fn run(argv: Vec<Bytes>) -> Frame {
    let mut session = Session::new(0, Origin::Sql, true);
    session.db = crate::gucs::SQL_DB.get() as i16;
    let reply = Spi::connect(|client| {
        let store = Store::new(client);
        crate::store::begin();
        let reply = cmd::dispatch(&mut Ctx::new(&mut session, Some(store)), &argv);
        // Key rows changed by the command are written back before the
        // caller's next statement can read kv.keys.
        if let Err(e) = store.flush() {
            crate::store::begin();
            return e.into_frame();
        }
        crate::store::begin();
        reply
    });
    if let Frame::Error(e) = &reply {
        ereport!(ERROR, PgSqlErrorCode::ERRCODE_DATA_EXCEPTION, String::from_utf8_lossy(e).into_owned());
    }
    reply
}

fn args<I: IntoIterator<Item = B>, B: AsRef<[u8]>>(words: I) -> Vec<Bytes> {
    words.into_iter().map(|w| Bytes::copy_from_slice(w.as_ref())).collect()
}

fn bulk_bytes(f: Frame) -> Option<Vec<u8>> {
    match f {
        Frame::Bulk(b) => Some(b.to_vec()),
        _ => None,
    }
}

/// A bulk reply as text. Redis values are bytes: one that is not valid
/// UTF-8, or holds a NUL, cannot be text and raises an error pointing to the
/// bytea form.
fn bulk_text(f: Frame) -> Option<String> {
    let b = bulk_bytes(f)?;
    if b.contains(&0) {
        error!("pgkv: value contains a NUL byte; use the bytea form of this function");
    }
    match String::from_utf8(b) {
        Ok(s) => Some(s),
        Err(_) => error!("pgkv: value is not valid UTF-8; use the bytea form of this function"),
    }
}

/// Fixed words followed by a VARIADIC argument's elements.
fn with_words(words: &[&str], rest: VariadicArray<&str>) -> Vec<Bytes> {
    let mut argv = args(words.iter().copied());
    argv.extend(rest.iter().flatten().map(|w| Bytes::copy_from_slice(w.as_bytes())));
    argv
}

/// An array reply of bulk strings as text values.
fn texts(f: Frame) -> Vec<String> {
    match f {
        Frame::Array(v) | Frame::Set(v) => v.into_iter().filter_map(bulk_text).collect(),
        other => error!("pgkv: expected an array reply, got {other:?}"),
    }
}

fn integer(f: Frame) -> i64 {
    match f {
        Frame::Integer(n) => n,
        other => error!("pgkv: expected an integer reply, got {other:?}"),
    }
}

/// The functions land in schema `kv`, the extension's schema (pgkv.control).
mod kv {
    use super::*;

    /// `GET key`
    #[pg_extern(name = "get")]
    fn get_text(key: &str) -> Option<String> {
        bulk_text(run(args(["GET", key])))
    }

    /// `GET key`, binary-safe.
    #[pg_extern(name = "get")]
    fn get_bytea(key: &[u8]) -> Option<Vec<u8>> {
        bulk_bytes(run(args([&b"GET"[..], key])))
    }

    /// `SET key value [PX milliseconds]`. Returns true: a plain SET always writes.
    #[pg_extern(name = "set")]
    fn set_text(key: &str, value: &str, px: default!(Option<i64>, "NULL")) -> bool {
        set_generic(key.as_bytes(), value.as_bytes(), px)
    }

    /// `SET key value [PX milliseconds]`, binary-safe.
    #[pg_extern(name = "set")]
    fn set_bytea(key: &[u8], value: &[u8], px: default!(Option<i64>, "NULL")) -> bool {
        set_generic(key, value, px)
    }

    /// `PUBLISH channel message`: how many clients receive it. Delivered
    /// when the calling transaction commits, never if it rolls back.
    #[pg_extern(name = "publish")]
    fn publish_text(channel: &str, message: &str) -> i64 {
        integer(run(args(["PUBLISH", channel, message])))
    }

    /// `PUBLISH channel message`, binary-safe.
    #[pg_extern(name = "publish")]
    fn publish_bytea(channel: &[u8], message: &[u8]) -> i64 {
        integer(run(args([&b"PUBLISH"[..], channel, message])))
    }

    /// `DEL key [key ...]`: how many keys existed.
    #[pg_extern(name = "del")]
    fn del_text(keys: VariadicArray<&str>) -> i64 {
        integer(run(with_words(&["DEL"], keys)))
    }

    /// `DEL key [key ...]`, binary-safe.
    #[pg_extern(name = "del")]
    fn del_bytea(keys: VariadicArray<&[u8]>) -> i64 {
        let mut argv = args(["DEL"]);
        argv.extend(keys.iter().flatten().map(Bytes::copy_from_slice));
        integer(run(argv))
    }

    /// `EXISTS key [key ...]`
    #[pg_extern]
    fn exists(keys: VariadicArray<&str>) -> i64 {
        integer(run(with_words(&["EXISTS"], keys)))
    }

    /// `INCRBY key increment` (`kv.incr('n')` adds 1).
    #[pg_extern]
    fn incr(key: &str, by: default!(i64, 1)) -> i64 {
        integer(run(args(["INCRBY".to_string(), key.to_string(), by.to_string()])))
    }

    /// `PEXPIRE key milliseconds`: true when the key exists.
    #[pg_extern]
    fn expire(key: &str, ms: i64) -> bool {
        integer(run(args(["PEXPIRE".to_string(), key.to_string(), ms.to_string()]))) == 1
    }

    /// `PTTL key`: milliseconds left, -1 without TTL, -2 when missing.
    #[pg_extern]
    fn ttl(key: &str) -> i64 {
        integer(run(args(["PTTL", key])))
    }

    /// `HSET key field value`: 1 when the field is new.
    #[pg_extern]
    fn hset(key: &str, field: &str, value: &str) -> i64 {
        integer(run(args(["HSET", key, field, value])))
    }

    /// `HGET key field`
    #[pg_extern]
    fn hget(key: &str, field: &str) -> Option<String> {
        bulk_text(run(args(["HGET", key, field])))
    }

    /// `HDEL key field [field ...]`
    #[pg_extern]
    fn hdel(key: &str, fields: VariadicArray<&str>) -> i64 {
        integer(run(with_words(&["HDEL", key], fields)))
    }

    /// `HGETALL key` as rows, in the hash's order.
    #[pg_extern]
    fn hgetall(key: &str) -> TableIterator<'static, (name!(field, String), name!(value, String))> {
        let pairs = match run(args(["HGETALL", key])) {
            Frame::Map(pairs) => pairs,
            other => error!("pgkv: unexpected HGETALL reply {other:?}"),
        };
        let rows: Vec<(String, String)> =
            pairs.into_iter().map(|(f, v)| (bulk_text(f).unwrap_or_default(), bulk_text(v).unwrap_or_default())).collect();
        TableIterator::new(rows)
    }

    /// `LPUSH key element [element ...]`: the new length.
    #[pg_extern]
    fn lpush(key: &str, values: VariadicArray<&str>) -> i64 {
        integer(run(with_words(&["LPUSH", key], values)))
    }

    /// `RPUSH key element [element ...]`: the new length.
    #[pg_extern]
    fn rpush(key: &str, values: VariadicArray<&str>) -> i64 {
        integer(run(with_words(&["RPUSH", key], values)))
    }

    /// `LPOP key`
    #[pg_extern]
    fn lpop(key: &str) -> Option<String> {
        bulk_text(run(args(["LPOP", key])))
    }

    /// `RPOP key`
    #[pg_extern]
    fn rpop(key: &str) -> Option<String> {
        bulk_text(run(args(["RPOP", key])))
    }

    /// `LLEN key`
    #[pg_extern]
    fn llen(key: &str) -> i64 {
        integer(run(args(["LLEN", key])))
    }

    /// `LRANGE key start stop` as a set of values, in list order.
    #[pg_extern]
    fn lrange(key: &str, start: default!(i64, 0), stop: default!(i64, -1)) -> SetOfIterator<'static, String> {
        SetOfIterator::new(texts(run(args(["LRANGE".to_string(), key.to_string(), start.to_string(), stop.to_string()]))))
    }

    /// `SADD key member [member ...]`: how many were new.
    #[pg_extern]
    fn sadd(key: &str, members: VariadicArray<&str>) -> i64 {
        integer(run(with_words(&["SADD", key], members)))
    }

    /// `SREM key member [member ...]`
    #[pg_extern]
    fn srem(key: &str, members: VariadicArray<&str>) -> i64 {
        integer(run(with_words(&["SREM", key], members)))
    }

    /// `SISMEMBER key member`
    #[pg_extern]
    fn sismember(key: &str, member: &str) -> bool {
        integer(run(args(["SISMEMBER", key, member]))) == 1
    }

    /// `SMEMBERS key` as a set of values.
    #[pg_extern]
    fn smembers(key: &str) -> SetOfIterator<'static, String> {
        SetOfIterator::new(texts(run(args(["SMEMBERS", key]))))
    }

    /// `ZADD key score member`: 1 when the member is new.
    #[pg_extern]
    fn zadd(key: &str, score: f64, member: &str) -> i64 {
        let score = pgkv_resp::num::format_double_reply(score);
        integer(run(args(["ZADD", key, score.as_str(), member])))
    }

    /// `ZSCORE key member`
    #[pg_extern]
    fn zscore(key: &str, member: &str) -> Option<f64> {
        match run(args(["ZSCORE", key, member])) {
            Frame::Double(d) => Some(d),
            _ => None,
        }
    }

    /// `ZREM key member [member ...]`
    #[pg_extern]
    fn zrem(key: &str, members: VariadicArray<&str>) -> i64 {
        integer(run(with_words(&["ZREM", key], members)))
    }

    /// `ZRANGE key start stop WITHSCORES` as (member, score) rows, by score.
    #[pg_extern]
    fn zrange(
        key: &str,
        start: default!(i64, 0),
        stop: default!(i64, -1),
    ) -> TableIterator<'static, (name!(member, String), name!(score, f64))> {
        let argv = args(["ZRANGE".to_string(), key.to_string(), start.to_string(), stop.to_string(), "WITHSCORES".to_string()]);
        let flat = match run(argv) {
            Frame::Array(v) => v,
            other => error!("pgkv: unexpected ZRANGE reply {other:?}"),
        };
        let mut rows = Vec::with_capacity(flat.len() / 2);
        let mut it = flat.into_iter();
        while let (Some(m), Some(Frame::Double(s))) = (it.next(), it.next()) {
            rows.push((bulk_text(m).unwrap_or_default(), s));
        }
        TableIterator::new(rows)
    }

    /// Any command, e.g. `kv.call('INCR', 'n')`. The reply as jsonb; a nil
    /// reply is SQL NULL.
    #[pg_extern]
    fn call(command: VariadicArray<&str>) -> Option<JsonB> {
        let argv: Vec<Bytes> = command.iter().map(|a| Bytes::copy_from_slice(a.unwrap_or_default().as_bytes())).collect();
        if argv.is_empty() {
            error!("pgkv: kv.call needs a command name");
        }
        jsonb(super::run(argv))
    }

    /// `EVAL script numkeys key... arg...`, e.g.
    /// `kv.eval('return redis.call(''GET'', KEYS[1])', '{k}')`. The script runs
    /// in the caller's transaction; its reply as jsonb (nil is SQL NULL).
    #[pg_extern]
    fn eval(
        script: &str,
        keys: default!(Vec<Option<String>>, "'{}'"),
        args: default!(Vec<Option<String>>, "'{}'"),
    ) -> Option<JsonB> {
        jsonb(super::run(script_argv("EVAL", script, keys, args)))
    }

    /// `FCALL function numkeys key... arg...`: a function of a library
    /// loaded with FUNCTION LOAD; its reply as jsonb (nil is SQL NULL).
    #[pg_extern]
    fn fcall(
        function: &str,
        keys: default!(Vec<Option<String>>, "'{}'"),
        args: default!(Vec<Option<String>>, "'{}'"),
    ) -> Option<JsonB> {
        jsonb(super::run(script_argv("FCALL", function, keys, args)))
    }

    /// The hash that leads kv.zsets's primary key, (id, hash, member): a
    /// query for one member of a sorted set by SQL finds it with one probe
    /// when it names the hash too (`... AND hash = kv.zset_member_hash(m)
    /// AND member = m`). ZSCAN's cursor walks these hashes.
    #[pg_extern(immutable, strict, parallel_safe)]
    fn zset_member_hash(member: &[u8]) -> i64 {
        crate::store::zset_member_hash(member)
    }
}

fn jsonb(f: Frame) -> Option<JsonB> {
    match f {
        Frame::NullBulk | Frame::NullArray | Frame::Null => None,
        f => Some(JsonB(to_json(f))),
    }
}

/// `EVAL`/`FCALL` argv: the script or function, numkeys, keys, args.
fn script_argv(command: &str, target: &str, keys: Vec<Option<String>>, args: Vec<Option<String>>) -> Vec<Bytes> {
    let word = |w: Option<String>| match w {
        Some(w) => Bytes::from(w),
        None => error!("pgkv: keys and arguments cannot be NULL"),
    };
    let mut argv = vec![Bytes::copy_from_slice(command.as_bytes()), Bytes::copy_from_slice(target.as_bytes()), Bytes::from(keys.len().to_string())];
    argv.extend(keys.into_iter().map(word));
    argv.extend(args.into_iter().map(word));
    argv
}

fn set_generic(key: &[u8], value: &[u8], px: Option<i64>) -> bool {
    let mut argv = args([&b"SET"[..], key, value]);
    if let Some(ms) = px {
        argv.extend(args(["PX".to_string(), ms.to_string()]));
    }
    !matches!(run(argv), Frame::NullBulk)
}

/// A byte string as JSON: UTF-8 text as is; anything else (or text with a
/// NUL, which jsonb cannot hold) in Postgres's bytea hex form, `\x...`.
fn bytes_json(b: &[u8]) -> Value {
    match std::str::from_utf8(b) {
        Ok(s) if !s.contains('\0') => Value::String(s.to_string()),
        _ => {
            let mut hex = String::with_capacity(2 + 2 * b.len());
            hex.push_str("\\x");
            for byte in b {
                hex.push_str(&format!("{byte:02x}"));
            }
            Value::String(hex)
        }
    }
}

fn to_json(f: Frame) -> Value {
    match f {
        Frame::Simple(b) | Frame::Bulk(b) | Frame::BigNumber(b) => bytes_json(&b),
        Frame::Verbatim { text, .. } => bytes_json(&text),
        Frame::Error(e) => {
            let mut m = Map::new();
            m.insert("error".into(), bytes_json(&e));
            Value::Object(m)
        }
        Frame::Integer(n) => Value::from(n),
        Frame::Double(d) => serde_json::Number::from_f64(d).map(Value::Number).unwrap_or_else(|| Value::String(pgkv_resp::num::format_double_reply(d))),
        Frame::Boolean(b) => Value::Bool(b),
        Frame::NullBulk | Frame::NullArray | Frame::Null => Value::Null,
        Frame::Array(v) | Frame::Set(v) | Frame::Push(v) | Frame::Sequence(v) => Value::Array(v.into_iter().map(to_json).collect()),
        Frame::Map(pairs) => {
            if pairs.iter().all(|(k, _)| matches!(k, Frame::Bulk(_) | Frame::Simple(_))) {
                let mut m = Map::new();
                for (k, v) in pairs {
                    if let Value::String(k) = to_json(k) {
                        m.insert(k, to_json(v));
                    }
                }
                Value::Object(m)
            } else {
                Value::Array(pairs.into_iter().map(|(k, v)| Value::Array(vec![to_json(k), to_json(v)])).collect())
            }
        }
        Frame::Attribute(_, inner) => to_json(*inner),
    }
}
