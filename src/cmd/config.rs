//! CONFIG GET, CONFIG SET and CONFIG RESETSTAT for the parameters clients
//! and test suites touch. Values are validated as Redis 7.0 validates them
//! and kept in `kv.config`, so every worker reports the same and they
//! survive restarts.
//!
//! Parameters with a PostgreSQL meaning map to it: `appendfsync` is the
//! worker's `synchronous_commit` (always = on, everysec and no = off). The
//! encoding thresholds (`*-max-*-entries`, `*-max-*-value`) drive what
//! OBJECT ENCODING reports. The rest are accepted and reported only.

use super::table::{tx, Binding};
use super::{Args, Ctx};
use crate::error::{CmdError, CmdResult};
use bytes::Bytes;
use pgkv_resp::Frame;

pub const COMMANDS: &[Binding] =
    &[tx("config|get", config_get), tx("config|set", config_set), tx("config|resetstat", config_resetstat)];

#[derive(Clone, Copy)]
enum Kind {
    Bool,
    Int(i64, i64),
    /// An integer clamped into the range instead of refused (`hz`).
    Clamped(i64, i64),
    Memory,
    Enum(&'static [&'static str]),
    Str,
    Immutable,
    /// notify-keyspace-events: Redis's event class characters, shown in
    /// their canonical order.
    Events,
}

struct Param {
    /// Names, the canonical one first; the others are aliases (ziplist).
    names: &'static [&'static str],
    kind: Kind,
    default: &'static str,
}

const POLICIES: &[&str] =
    &["volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl", "allkeys-lru", "allkeys-lfu", "allkeys-random", "noeviction"];

const PARAMS: &[Param] = &[
    Param { names: &["save"], kind: Kind::Str, default: "" },
    Param { names: &["appendonly"], kind: Kind::Bool, default: "no" },
    Param { names: &["appendfsync"], kind: Kind::Enum(&["everysec", "always", "no"]), default: "always" },
    Param { names: &["hash-max-listpack-entries", "hash-max-ziplist-entries"], kind: Kind::Int(0, i64::MAX), default: "512" },
    Param { names: &["hash-max-listpack-value", "hash-max-ziplist-value"], kind: Kind::Int(0, i64::MAX), default: "64" },
    Param { names: &["zset-max-listpack-entries", "zset-max-ziplist-entries"], kind: Kind::Int(0, i64::MAX), default: "128" },
    Param { names: &["zset-max-listpack-value", "zset-max-ziplist-value"], kind: Kind::Int(0, i64::MAX), default: "64" },
    Param { names: &["set-max-intset-entries"], kind: Kind::Int(0, i64::MAX), default: "512" },
    Param { names: &["list-max-listpack-size", "list-max-ziplist-size"], kind: Kind::Int(i32::MIN as i64, i32::MAX as i64), default: "-2" },
    Param { names: &["list-compress-depth"], kind: Kind::Int(0, i32::MAX as i64), default: "0" },
    Param { names: &["stream-node-max-entries"], kind: Kind::Int(0, i64::MAX), default: "100" },
    Param { names: &["stream-node-max-bytes"], kind: Kind::Memory, default: "4096" },
    Param { names: &["notify-keyspace-events"], kind: Kind::Events, default: "" },
    Param { names: &["maxmemory"], kind: Kind::Memory, default: "0" },
    Param { names: &["maxmemory-policy"], kind: Kind::Enum(POLICIES), default: "noeviction" },
    Param { names: &["maxclients"], kind: Kind::Int(1, i32::MAX as i64), default: "10000" },
    Param { names: &["timeout"], kind: Kind::Int(0, i32::MAX as i64), default: "0" },
    Param { names: &["tcp-keepalive"], kind: Kind::Int(0, i32::MAX as i64), default: "300" },
    Param { names: &["hz"], kind: Kind::Clamped(1, 500), default: "10" },
    Param { names: &["lua-time-limit", "busy-reply-threshold"], kind: Kind::Int(0, i64::MAX), default: "5000" },
    Param { names: &["slowlog-log-slower-than"], kind: Kind::Int(-1, i64::MAX), default: "10000" },
    Param { names: &["slowlog-max-len"], kind: Kind::Int(0, i64::MAX), default: "128" },
    Param { names: &["proto-max-bulk-len"], kind: Kind::Memory, default: "536870912" },
    Param { names: &["databases"], kind: Kind::Immutable, default: "16" },
    Param { names: &["port"], kind: Kind::Immutable, default: "" },
];

fn find(name: &str) -> Option<&'static Param> {
    PARAMS.iter().find(|p| p.names.contains(&name))
}

/// The current value of every parameter, by canonical name.
fn current(ctx: &Ctx) -> Result<Vec<(&'static Param, String)>, CmdError> {
    let set = ctx.store().config_all()?;
    Ok(PARAMS
        .iter()
        .map(|p| {
            let value = match p.names[0] {
                "port" => crate::gucs::port().to_string(),
                "appendfsync" => appendfsync_from_postgres(),
                name => set.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).unwrap_or_else(|| p.default.to_string()),
            };
            (p, value)
        })
        .collect())
}

/// One parameter's value: what OBJECT ENCODING reads for its thresholds.
pub fn value(ctx: &Ctx, name: &str) -> Result<i64, CmdError> {
    let all = current(ctx)?;
    let v = all.iter().find(|(p, _)| p.names.contains(&name)).map(|(_, v)| v.as_str()).unwrap_or("0");
    Ok(v.parse().unwrap_or(0))
}

fn appendfsync_from_postgres() -> String {
    match crate::gucs::show_setting(c"synchronous_commit").as_str() {
        "off" => "everysec".into(),
        _ => "always".into(),
    }
}

/// `CONFIG GET parameter [parameter ...]`: a map; patterns use Redis's glob.
fn config_get(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let all = current(ctx)?;
    let mut out: Vec<(Frame, Frame)> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for arg in args.rest() {
        let pattern = arg.to_ascii_lowercase();
        let glob = pattern.iter().any(|c| matches!(c, b'*' | b'?' | b'['));
        for (p, v) in &all {
            for name in p.names {
                let hit = if glob { pgkv_resp::glob::matches(&pattern, name.as_bytes()) } else { pattern.as_slice() == name.as_bytes() };
                if hit && !seen.contains(name) {
                    seen.push(name);
                    // An exact name is echoed as the client spelled it.
                    let shown = if glob { Bytes::from_static(name.as_bytes()) } else { arg.clone() };
                    let v = match p.kind {
                        Kind::Events => super::notify::parse_flags(v.as_bytes()).map(super::notify::flags_to_string).unwrap_or_default(),
                        _ => v.clone(),
                    };
                    out.push((Frame::Bulk(shown), Frame::Bulk(Bytes::from(v))));
                }
            }
        }
    }
    Ok(Frame::Map(out))
}

fn failed(name: &str, why: &str) -> CmdError {
    CmdError::msg(format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"))
}

/// Redis's `memtoull`: bytes with an optional k/kb/m/mb/g/gb unit.
fn parse_memory(v: &str) -> Option<u64> {
    let lower = v.to_ascii_lowercase();
    let units: [(&str, u64); 7] =
        [("gb", 1 << 30), ("mb", 1 << 20), ("kb", 1 << 10), ("g", 1_000_000_000), ("m", 1_000_000), ("k", 1000), ("b", 1)];
    let (digits, mul) = units.iter().find(|(u, _)| lower.ends_with(u)).map(|(u, m)| (&lower[..lower.len() - u.len()], *m)).unwrap_or((&lower[..], 1));
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(mul)
}

/// Checks a value as Redis would and returns the form to store.
fn validate(p: &Param, name: &str, v: &str) -> Result<String, CmdError> {
    match p.kind {
        Kind::Immutable => Err(failed(name, "can't set immutable config")),
        Kind::Str => Ok(v.to_string()),
        Kind::Events => super::notify::parse_flags(v.as_bytes())
            .map(super::notify::flags_to_stored)
            .ok_or_else(|| failed(name, "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")),
        Kind::Bool => match v.to_ascii_lowercase().as_str() {
            "yes" | "no" => Ok(v.to_ascii_lowercase()),
            _ => Err(failed(name, "argument must be 'yes' or 'no'")),
        },
        Kind::Enum(options) => {
            let lower = v.to_ascii_lowercase();
            if options.contains(&lower.as_str()) {
                Ok(lower)
            } else {
                Err(failed(name, &format!("argument(s) must be one of the following: {}", options.join(", "))))
            }
        }
        Kind::Memory => parse_memory(v).map(|n| n.to_string()).ok_or_else(|| failed(name, "argument must be a memory value")),
        Kind::Int(min, max) | Kind::Clamped(min, max) => {
            let n = pgkv_resp::num::parse_i64(v.as_bytes()).ok_or_else(|| failed(name, "argument couldn't be parsed into an integer"))?;
            if (min..=max).contains(&n) {
                Ok(n.to_string())
            } else if let Kind::Clamped(..) = p.kind {
                Ok(n.clamp(min, max).to_string())
            } else {
                Err(failed(name, &format!("argument must be between {min} and {max} inclusive")))
            }
        }
    }
}

/// `CONFIG SET parameter value [parameter value ...]`: all or nothing.
fn config_set(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let rest = args.rest();
    if rest.len() % 2 != 0 {
        return Err(CmdError::Arity("config|set".into()));
    }
    let mut changes: Vec<(&'static Param, String)> = Vec::new();
    for pair in rest.chunks(2) {
        let name = String::from_utf8_lossy(&pair[0]).to_ascii_lowercase();
        let Some(p) = find(&name) else {
            return Err(CmdError::msg(format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{}'",
                String::from_utf8_lossy(&pair[0])
            )));
        };
        if changes.iter().any(|(q, _)| std::ptr::eq(*q, p)) {
            return Err(failed(&name, "duplicate parameter"));
        }
        let value = validate(p, &name, &String::from_utf8_lossy(&pair[1]))?;
        changes.push((p, value));
    }
    for (p, value) in changes {
        if p.names[0] == "appendfsync" {
            // The Postgres meaning: how this worker's commits wait for WAL.
            let setting = if value == "always" { "on" } else { "off" };
            crate::gucs::set_session(c"synchronous_commit", setting);
        }
        ctx.store().config_set(p.names[0], &value)?;
    }
    crate::shared::config_changed();
    super::notify::invalidate();
    Ok(Frame::ok())
}

/// `CONFIG RESETSTAT`
fn config_resetstat(_ctx: &mut Ctx, _args: &mut Args) -> CmdResult {
    crate::stats::with(|r| {
        r.total_commands_processed = 0;
        r.total_connections_received = 0;
        r.total_net_input_bytes = 0;
        r.total_net_output_bytes = 0;
        r.rejected_connections = 0;
        r.expired_keys = 0;
    });
    Ok(Frame::ok())
}
