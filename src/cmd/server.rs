//! Server commands: COMMAND (COUNT, INFO, DOCS) and INFO.
//!
//! COMMAND INFO and COMMAND DOCS are rendered from the command table, in the
//! shapes Redis 7.0 uses (sets and maps in RESP3, flattened in RESP2).

use super::table::{self, local, tx, Binding, CommandSpec};
use super::{Args, Ctx};
use crate::error::CmdResult;
use crate::stats;
use bytes::Bytes;
use pgkv_resp::Frame;

/// The Redis version pgkv is compatible with, reported by HELLO and INFO.
pub const REDIS_VERSION: &str = "7.0.15";

pub const COMMANDS: &[Binding] = &[
    local("command", command_all),
    local("command|count", command_count),
    local("command|info", command_info),
    local("command|docs", command_docs),
    tx("info", info),
];


fn bulk(s: &str) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

/// `COMMAND`: info on every command.
fn command_all(_ctx: &mut Ctx, _args: &mut Args) -> CmdResult {
    Ok(Frame::Array(table::all().map(|c| c.info.clone()).collect()))
}

/// `COMMAND COUNT`
fn command_count(_ctx: &mut Ctx, _args: &mut Args) -> CmdResult {
    Ok(Frame::Integer(table::all().count() as i64))
}

/// `COMMAND INFO [command-name ...]`
fn command_info(_ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    if args.is_empty() {
        return command_all(_ctx, args);
    }
    Ok(Frame::Array(
        args.rest().iter().map(|name| table::lookup_full(name).map(|c| c.info.clone()).unwrap_or(Frame::NullBulk)).collect(),
    ))
}

/// `COMMAND DOCS [command-name ...]`: unknown names are left out.
fn command_docs(_ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let specs: Vec<&CommandSpec> = if args.is_empty() {
        table::all().collect()
    } else {
        args.rest().iter().filter_map(|n| table::lookup_full(n)).collect()
    };
    Ok(Frame::Map(specs.into_iter().map(|c| (bulk(&c.name), c.docs.clone())).collect()))
}

/// `INFO [section ...]`: server, clients, stats and keyspace. Unknown sections are
/// empty, as in Redis.
fn info(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let wanted: Vec<String> = args.rest().iter().map(|s| String::from_utf8_lossy(s).to_ascii_lowercase()).collect();
    let all = wanted.is_empty() || wanted.iter().any(|w| matches!(w.as_str(), "all" | "everything" | "default"));
    let include = |name: &str| all || wanted.iter().any(|w| w == name);
    let rt = stats::with(|r| r.clone());
    let mut sections: Vec<String> = Vec::new();
    if include("server") {
        sections.push(server_section(&rt));
    }
    if include("clients") {
        sections.push(format!("# Clients\r\nconnected_clients:{}\r\nblocked_clients:{}\r\n", rt.connected_clients, rt.blocked_clients));
    }
    if include("stats") {
        let pubsub = super::pubsub::local_counts();
        sections.push(format!(
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ntotal_net_input_bytes:{}\r\n\
             total_net_output_bytes:{}\r\nrejected_connections:{}\r\nexpired_keys:{}\r\npubsub_channels:{}\r\npubsub_patterns:{}\r\npubsubshard_channels:{}\r\n\
             pgkv_batches:{}\r\npgkv_batch_retries:{}\r\npgkv_row_location_hits:{}\r\npgkv_row_location_misses:{}\r\n\
             pgkv_output_limit_disconnections:{}\r\n",
            rt.total_connections_received,
            rt.total_commands_processed,
            rt.total_net_input_bytes,
            rt.total_net_output_bytes,
            rt.rejected_connections,
            rt.expired_keys,
            pubsub.0,
            pubsub.1,
            pubsub.2,
            rt.batches,
            rt.batch_retries,
            rt.row_location_hits,
            rt.row_location_misses,
            rt.client_output_limit_disconnections,
        ));
    }
    if include("keyspace") {
        let mut s = String::from("# Keyspace\r\n");
        for (db, keys, expires) in ctx.store().keyspace(ctx.now_ms)? {
            s.push_str(&format!("db{db}:keys={keys},expires={expires},avg_ttl=0\r\n"));
        }
        sections.push(s);
    }
    Ok(Frame::Verbatim { format: *b"txt", text: Bytes::from(sections.join("\r\n")) })
}

fn server_section(rt: &stats::Runtime) -> String {
    let uname = uname();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let uptime = rt.started.elapsed().as_secs();
    let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default();
    let config_file = crate::gucs::config_file();
    let fields: Vec<(&str, String)> = vec![
        ("redis_version", REDIS_VERSION.into()),
        ("redis_git_sha1", "00000000".into()),
        ("redis_git_dirty", "0".into()),
        ("redis_build_id", format!("pgkv-{}", env!("CARGO_PKG_VERSION"))),
        ("redis_mode", "standalone".into()),
        ("os", uname),
        ("arch_bits", (usize::BITS).to_string()),
        ("monotonic_clock", "POSIX clock_gettime".into()),
        ("multiplexing_api", "epoll".into()),
        ("atomicvar_api", "c11-builtin".into()),
        ("gcc_version", "0.0.0".into()),
        ("process_id", std::process::id().to_string()),
        ("process_supervised", "postgres".into()),
        ("run_id", rt.run_id.clone()),
        ("tcp_port", rt.port.to_string()),
        ("server_time_usec", now.as_micros().to_string()),
        ("uptime_in_seconds", uptime.to_string()),
        ("uptime_in_days", (uptime / 86400).to_string()),
        ("hz", "10".into()),
        ("configured_hz", "10".into()),
        ("lru_clock", ((now.as_millis() / 1000) & ((1 << 24) - 1)).to_string()),
        ("executable", exe),
        ("config_file", config_file),
        ("io_threads_active", "0".into()),
        ("pgkv_version", env!("CARGO_PKG_VERSION").into()),
        ("postgres_version", crate::gucs::server_version()),
        ("pgkv_worker", rt.worker.map(|w| w.to_string()).unwrap_or_else(|| "sql".into())),
        ("pgkv_workers", crate::gucs::workers().to_string()),
    ];
    let mut s = String::from("# Server\r\n");
    for (k, v) in fields {
        s.push_str(k);
        s.push(':');
        s.push_str(&v);
        s.push_str("\r\n");
    }
    s
}

fn uname() -> String {
    // SAFETY: uname fills the struct it is given; the fields are NUL-terminated.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return String::new();
        }
        let f = |s: &[libc::c_char]| std::ffi::CStr::from_ptr(s.as_ptr()).to_string_lossy().into_owned();
        format!("{} {} {}", f(&u.sysname), f(&u.release), f(&u.machine))
    }
}
