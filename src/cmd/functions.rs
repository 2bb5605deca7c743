//! Redis 7 functions: FUNCTION LOAD / DELETE / LIST / FLUSH / DUMP /
//! RESTORE / STATS / KILL, FCALL and FCALL_RO.
//!
//! Libraries live in `kv.libraries`; each worker keeps them loaded in its
//! FUNCTION engine (`crate::lua::Functions`) and reloads them when
//! `kv.library_version` says another worker (or a rolled-back attempt of
//! this one) changed them. Changes lock that version row, so two workers
//! never apply library changes at the same time.

use super::scripting::{split_keys, time_limit};
use super::table::{local, tx, Binding};
use super::{eq_ic, Args, Ctx};
use crate::error::{CmdError, CmdResult};
use crate::lua::{self, Functions, RunSpec, FLAG_NAMES, NO_WRITES};
use crate::store::Store;
use bytes::Bytes;
use pgkv_resp::Frame;
use std::cell::Cell;

pub const COMMANDS: &[Binding] = &[
    tx("fcall", fcall),
    tx("fcall_ro", fcall_ro),
    tx("function|load", function_load),
    tx("function|delete", function_delete),
    tx("function|list", function_list),
    tx("function|flush", function_flush),
    tx("function|dump", function_dump),
    tx("function|restore", function_restore),
    tx("function|stats", function_stats),
    local("function|kill", function_kill),
];

/// The RDB version of FUNCTION DUMP payloads (Redis 7.0's RDB_VERSION).
const RDB_VERSION: u16 = 10;
const RDB_OPCODE_FUNCTION2: u8 = 245;

thread_local! {
    /// (libraries, functions) of the loaded engine, for FUNCTION STATS
    /// while a function runs (the engine itself is busy then).
    static COUNTS: Cell<(i64, i64)> = const { Cell::new((0, 0)) };
}

fn note_counts(f: &Functions) {
    let libs = f.libraries.len() as i64;
    let funcs = f.libraries.values().map(|l| l.functions.len() as i64).sum();
    COUNTS.with(|c| c.set((libs, funcs)));
}

/// Brings this worker's engine up to date with kv.libraries. With `lock`,
/// the version row stays locked until commit (for changes).
fn sync(store: Store, lock: bool) -> Result<(), CmdError> {
    let version = store.library_version(lock)?;
    if lua::with_functions(|f| f.version) == Some(version) {
        return Ok(());
    }
    let mut fresh = lua::reset_functions();
    for (name, code) in store.libraries()? {
        if let Err(e) = fresh.load(&code, false) {
            pgrx::warning!("pgkv: could not load function library \"{name}\": {e}");
        }
    }
    fresh.version = Some(version);
    note_counts(&fresh);
    lua::install_functions(fresh);
    Ok(())
}

/// Records a change made by this transaction.
fn bump(store: Store) -> Result<(), CmdError> {
    let version = store.library_bump()?;
    lua::with_functions(|f| {
        f.version = Some(version);
        note_counts(f);
    });
    Ok(())
}

fn err(text: String) -> CmdError {
    CmdError::msg(format!("ERR {text}"))
}

fn subcommand_syntax(args: &Args) -> CmdError {
    let argv = args.argv;
    CmdError::msg(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        String::from_utf8_lossy(&argv[1][..argv[1].len().min(128)]),
        String::from_utf8_lossy(&argv[0]).to_ascii_uppercase()
    ))
}

/// `FCALL function numkeys [key ...] [arg ...]`
fn fcall(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    fcall_generic(ctx, args, false)
}

/// `FCALL_RO function numkeys [key ...] [arg ...]`
fn fcall_ro(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    fcall_generic(ctx, args, true)
}

fn fcall_generic(ctx: &mut Ctx, args: &mut Args, ro: bool) -> CmdResult {
    let command = args.argv;
    let name = String::from_utf8_lossy(&args.next_bytes()?).into_owned();
    let numkeys_arg = args.next_bytes()?;
    sync(ctx.store(), false)?;
    let Some(flags) = lua::with_functions(|f| f.function(&name).map(|fi| fi.flags)) else {
        return Err(CmdError::Static("ERR Function not found"));
    };
    let numkeys = pgkv_resp::num::parse_i64(&numkeys_arg).ok_or(CmdError::Static("ERR Bad number of keys provided"))?;
    let (keys, argv) = split_keys(numkeys, args.rest())?;
    if flags & NO_WRITES == 0 && ro {
        return Err(CmdError::Static("ERR Can not execute a script with write flag using *_ro command."));
    }
    let spec = RunSpec { eval: false, name: name.clone(), read_only: ro || flags & NO_WRITES != 0, limit_ms: time_limit(ctx)? };
    Ok(lua::with_functions(|f| {
        note_counts(f);
        f.run(ctx, &name, keys, argv, spec, command)
    }))
}

/// `FUNCTION LOAD [REPLACE] function-code`: the library's name.
fn function_load(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let rest = args.rest();
    let mut replace = false;
    for opt in &rest[..rest.len().saturating_sub(1)] {
        if eq_ic(opt, "replace") {
            replace = true;
            continue;
        }
        return Err(CmdError::msg(format!("ERR Unknown option given: {}", String::from_utf8_lossy(opt))));
    }
    // Arity guarantees one argument; a lone REPLACE is the code.
    let code = rest.last().cloned().unwrap_or_default();
    let store = ctx.store();
    sync(store, true)?;
    let name = lua::with_functions(|f| f.load(&code, replace)).map_err(err)?;
    store.library_put(&name, &code)?;
    bump(store)?;
    Ok(Frame::Bulk(Bytes::from(name)))
}

/// `FUNCTION DELETE library-name`
fn function_delete(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let name = String::from_utf8_lossy(&args.next_bytes()?).into_owned();
    let store = ctx.store();
    sync(store, true)?;
    if lua::with_functions(|f| f.libraries.remove(&name)).is_none() {
        return Err(CmdError::Static("ERR Library not found"));
    }
    store.library_delete(&name)?;
    bump(store)?;
    Ok(Frame::ok())
}

/// `FUNCTION FLUSH [ASYNC|SYNC]`
fn function_flush(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    if args.argv.len() > 3 {
        return Err(subcommand_syntax(args));
    }
    let rest = args.rest();
    if let [mode] = rest {
        if !eq_ic(mode, "sync") && !eq_ic(mode, "async") {
            return Err(CmdError::Static("ERR FUNCTION FLUSH only supports SYNC|ASYNC option"));
        }
    }
    let store = ctx.store();
    store.library_version(true)?;
    store.library_flush()?;
    lua::install_functions(lua::reset_functions());
    bump(store)?;
    Ok(Frame::ok())
}

/// `FUNCTION LIST [LIBRARYNAME library-name-pattern] [WITHCODE]`
fn function_list(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let mut with_code = false;
    let mut pattern: Option<Bytes> = None;
    let rest = args.rest();
    let mut i = 0;
    while i < rest.len() {
        let arg = &rest[i];
        if !with_code && eq_ic(arg, "withcode") {
            with_code = true;
        } else if pattern.is_none() && eq_ic(arg, "libraryname") {
            if i + 1 >= rest.len() {
                return Err(CmdError::Static("ERR library name argument was not given"));
            }
            i += 1;
            pattern = Some(rest[i].clone());
        } else {
            return Err(CmdError::msg(format!("ERR Unknown argument {}", String::from_utf8_lossy(arg))));
        }
        i += 1;
    }
    sync(ctx.store(), false)?;
    let bulk = |s: &str| Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()));
    let libraries = lua::with_functions(|f| {
        f.libraries
            .values()
            .filter(|l| pattern.as_ref().is_none_or(|p| pgkv_resp::glob::matches(&p.to_ascii_lowercase(), &l.name.to_ascii_lowercase().into_bytes())))
            .map(|l| {
                let functions = l
                    .functions
                    .iter()
                    .map(|fi| {
                        let flags = FLAG_NAMES
                            .iter()
                            .enumerate()
                            .filter(|(i, _)| fi.flags & (1 << i) != 0)
                            .map(|(_, n)| Frame::Simple(Bytes::from_static(n.as_bytes())))
                            .collect();
                        Frame::Map(vec![
                            (bulk("name"), bulk(&fi.name)),
                            (bulk("description"), fi.desc.clone().map(Frame::Bulk).unwrap_or(Frame::NullBulk)),
                            (bulk("flags"), Frame::Set(flags)),
                        ])
                    })
                    .collect();
                let mut entry = vec![
                    (bulk("library_name"), bulk(&l.name)),
                    (bulk("engine"), bulk("LUA")),
                    (bulk("functions"), Frame::Array(functions)),
                ];
                if with_code {
                    entry.push((bulk("library_code"), Frame::Bulk(l.code.clone())));
                }
                Frame::Map(entry)
            })
            .collect()
    });
    Ok(Frame::Array(libraries))
}

/// `FUNCTION DUMP`: the libraries as an RDB payload (RESTORE's input).
fn function_dump(ctx: &mut Ctx, _args: &mut Args) -> CmdResult {
    sync(ctx.store(), false)?;
    let mut out = Vec::new();
    lua::with_functions(|f| {
        for l in f.libraries.values() {
            out.push(RDB_OPCODE_FUNCTION2);
            rdb_save_string(&mut out, &l.code);
        }
    });
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(Frame::Bulk(Bytes::from(out)))
}

/// `FUNCTION RESTORE serialized-value [FLUSH|APPEND|REPLACE]`
fn function_restore(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    if args.argv.len() > 4 {
        return Err(subcommand_syntax(args));
    }
    let data = args.next_bytes()?;
    #[derive(PartialEq)]
    enum Policy {
        Append,
        Replace,
        Flush,
    }
    let policy = match args.rest() {
        [] => Policy::Append,
        [p] if eq_ic(p, "append") => Policy::Append,
        [p] if eq_ic(p, "replace") => Policy::Replace,
        [p] if eq_ic(p, "flush") => Policy::Flush,
        _ => return Err(CmdError::Static("ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.")),
    };
    if !verify_dump(&data) {
        return Err(CmdError::Static("ERR DUMP payload version or checksum are wrong"));
    }
    // Every library is loaded into a scratch engine first, as Redis loads
    // into a new library context, so a bad payload changes nothing.
    let mut scratch = lua::reset_functions();
    let body = &data[..data.len() - 10];
    let mut pos = 0;
    let mut payloads = Vec::new();
    while pos < body.len() {
        if body[pos] != RDB_OPCODE_FUNCTION2 {
            return Err(CmdError::Static("ERR given type is not a function"));
        }
        pos += 1;
        let code = rdb_load_string(body, &mut pos).ok_or(CmdError::Static("ERR Failed loading library payload"))?;
        scratch.load(&code, false).map_err(err)?;
        payloads.push(code);
    }
    let store = ctx.store();
    sync(store, true)?;
    if policy == Policy::Flush {
        store.library_flush()?;
        lua::install_functions(lua::reset_functions());
    } else {
        let conflict = lua::with_functions(|f| -> Result<(), CmdError> {
            for l in scratch.libraries.values() {
                if f.libraries.contains_key(&l.name) && policy == Policy::Append {
                    return Err(CmdError::msg(format!("ERR Library {} already exists", l.name)));
                }
            }
            for l in scratch.libraries.values() {
                for fi in &l.functions {
                    let taken = f.libraries.values().any(|o| !scratch.libraries.contains_key(&o.name) && o.functions.iter().any(|g| g.name == fi.name));
                    if taken {
                        return Err(CmdError::msg(format!("ERR Function {} already exists", fi.name)));
                    }
                }
            }
            Ok(())
        });
        conflict?;
    }
    for code in payloads {
        let name = lua::with_functions(|f| f.load(&code, true)).map_err(err)?;
        store.library_put(&name, &code)?;
    }
    bump(store)?;
    Ok(Frame::ok())
}

fn stats_reply(running: Frame, (libs, funcs): (i64, i64)) -> Frame {
    let bulk = |s: &str| Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()));
    Frame::Map(vec![
        (bulk("running_script"), running),
        (
            bulk("engines"),
            Frame::Map(vec![(
                bulk("LUA"),
                Frame::Map(vec![(bulk("libraries_count"), Frame::Integer(libs)), (bulk("functions_count"), Frame::Integer(funcs))]),
            )]),
        ),
    ])
}

/// `FUNCTION STATS` (no script is running when it runs as a command).
fn function_stats(ctx: &mut Ctx, _args: &mut Args) -> CmdResult {
    sync(ctx.store(), false)?;
    lua::with_functions(|f| note_counts(f));
    Ok(stats_reply(Frame::NullBulk, COUNTS.with(|c| c.get())))
}

/// FUNCTION STATS while a script is busy: an EVAL answers -BUSY.
pub fn stats_while_busy() -> Frame {
    let Some((name, command, duration)) = lua::running_script() else {
        return stats_reply(Frame::NullBulk, COUNTS.with(|c| c.get()));
    };
    if lua::running_eval() == Some(true) {
        return lua::busy_error();
    }
    let bulk = |s: &str| Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()));
    let running = Frame::Map(vec![
        (bulk("name"), bulk(&name)),
        (bulk("command"), Frame::Array(command.into_iter().map(Frame::Bulk).collect())),
        (bulk("duration_ms"), Frame::Integer(duration)),
    ]);
    stats_reply(running, COUNTS.with(|c| c.get()))
}

/// `FUNCTION KILL`
fn function_kill(_ctx: &mut Ctx, _args: &mut Args) -> CmdResult {
    Ok(lua::kill(false))
}

/// `rdbSaveRawString` without LZF compression: a length, then the bytes.
fn rdb_save_string(out: &mut Vec<u8>, s: &[u8]) {
    let len = s.len();
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.push(0x40 | (len >> 8) as u8);
        out.push(len as u8);
    } else if len <= u32::MAX as usize {
        out.push(0x80);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(s);
}

/// `rdbLoadLen`: (length, encoded-object type).
fn rdb_load_len(data: &[u8], pos: &mut usize) -> Option<(u64, Option<u8>)> {
    let first = *data.get(*pos)?;
    *pos += 1;
    Some(match first >> 6 {
        0 => ((first & 0x3f) as u64, None),
        1 => {
            let second = *data.get(*pos)?;
            *pos += 1;
            ((((first & 0x3f) as u64) << 8) | second as u64, None)
        }
        3 => (0, Some(first & 0x3f)),
        _ => match first {
            0x80 => {
                let b = data.get(*pos..*pos + 4)?;
                *pos += 4;
                (u32::from_be_bytes(b.try_into().ok()?) as u64, None)
            }
            0x81 => {
                let b = data.get(*pos..*pos + 8)?;
                *pos += 8;
                (u64::from_be_bytes(b.try_into().ok()?), None)
            }
            _ => return None,
        },
    })
}

/// `rdbGenericLoadStringObject`: plain, integer-encoded or LZF-compressed.
fn rdb_load_string(data: &[u8], pos: &mut usize) -> Option<Vec<u8>> {
    let (len, enc) = rdb_load_len(data, pos)?;
    match enc {
        None => {
            let s = data.get(*pos..*pos + len as usize)?.to_vec();
            *pos += len as usize;
            Some(s)
        }
        Some(n @ 0..=2) => {
            let size = 1 << n;
            let b = data.get(*pos..*pos + size)?;
            *pos += size;
            let v = match n {
                0 => b[0] as i8 as i64,
                1 => i16::from_le_bytes([b[0], b[1]]) as i64,
                _ => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64,
            };
            Some(v.to_string().into_bytes())
        }
        Some(3) => {
            let (clen, _) = rdb_load_len(data, pos)?;
            let (len, _) = rdb_load_len(data, pos)?;
            let compressed = data.get(*pos..*pos + clen as usize)?;
            *pos += clen as usize;
            lzf_decompress(compressed, len as usize)
        }
        _ => None,
    }
}

/// liblzf's decompressor (Redis's lzf_d.c).
fn lzf_decompress(input: &[u8], out_len: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(out_len);
    let mut ip = 0;
    while ip < input.len() {
        let ctrl = input[ip] as usize;
        ip += 1;
        if ctrl < 32 {
            let run = ctrl + 1;
            out.extend_from_slice(input.get(ip..ip + run)?);
            ip += run;
        } else {
            let mut len = ctrl >> 5;
            let mut back = (ctrl & 0x1f) << 8;
            if len == 7 {
                len += *input.get(ip)? as usize;
                ip += 1;
            }
            back += *input.get(ip)? as usize;
            ip += 1;
            let start = out.len().checked_sub(back + 1)?;
            for i in 0..len + 2 {
                let c = out[start + i];
                out.push(c);
            }
        }
    }
    (out.len() == out_len).then_some(out)
}

/// Redis's `verifyDumpPayload`: RDB version and CRC64 footer.
fn verify_dump(p: &[u8]) -> bool {
    if p.len() < 10 {
        return false;
    }
    let footer = &p[p.len() - 10..];
    let rdbver = u16::from_le_bytes([footer[0], footer[1]]);
    rdbver <= RDB_VERSION && crc64(&p[..p.len() - 8]).to_le_bytes() == footer[2..]
}

/// Redis's CRC-64 (Jones polynomial, reflected, as crc64.c).
pub fn crc64(data: &[u8]) -> u64 {
    const POLY: u64 = 0x95ac_9329_ac4b_c9b5; // 0xad93d23594c935a9 bit-reversed
    let mut crc: u64 = 0;
    for &b in data {
        crc ^= b as u64;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ POLY } else { crc >> 1 };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_matches_redis_test_vector() {
        assert_eq!(crc64(b"123456789"), 0xe9c6d914c4b8d9ca);
    }

    #[test]
    fn rdb_strings_round_trip() {
        for len in [0usize, 63, 64, 16383, 16384, 70000] {
            let s = vec![b'x'; len];
            let mut out = Vec::new();
            rdb_save_string(&mut out, &s);
            let mut pos = 0;
            assert_eq!(rdb_load_string(&out, &mut pos), Some(s));
            assert_eq!(pos, out.len());
        }
    }
}
