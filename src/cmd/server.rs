//! Server commands: COMMAND (COUNT, INFO, DOCS) and INFO.
//!
//! COMMAND INFO and COMMAND DOCS are rendered from the command table, in the
//! shapes Redis 7.0 uses (sets and maps in RESP3, flattened in RESP2).

use super::table::{
    self, arg, command, doc, Arg, ArgKind, BeginSearch, CommandSpec, Doc, FindKeys, KeySpec,
};
use super::{Args, Ctx};
use crate::error::CmdResult;
use crate::stats;
use bytes::Bytes;
use pgkv_resp::Frame;

/// The Redis version pgkv is compatible with, reported by HELLO and INFO.
pub const REDIS_VERSION: &str = "7.0.15";

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        flags: &["loading", "stale"],
        acl: &["connection"],
        tips: &["nondeterministic_output_order"],
        doc: doc("Get array of Redis command details", "2.8.13", "server", "O(N) where N is the total number of Redis commands"),
        subcommands: COMMAND_SUBCOMMANDS,
        ..command("command", -1, command_all)
    },
    CommandSpec {
        flags: &["loading", "stale"],
        acl: &["dangerous"],
        tips: &["nondeterministic_output", "request_policy:all_shards", "response_policy:special"],
        doc: Doc {
            history: &[("7.0.0", "Added support for taking multiple section arguments.")],
            args: &[Arg { flags: &["optional", "multiple"], ..arg("section", ArgKind::String) }],
            ..doc("Get information and statistics about the server", "1.0.0", "server", "O(1)")
        },
        ..command("info", -1, info)
    },
];

const COMMAND_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec {
        flags: &["loading", "stale"],
        acl: &["connection"],
        doc: doc("Get total number of Redis commands", "2.8.13", "server", "O(1)"),
        ..command("command|count", 2, command_count)
    },
    CommandSpec {
        flags: &["loading", "stale"],
        acl: &["connection"],
        tips: &["nondeterministic_output_order"],
        doc: Doc {
            history: &[("7.0.0", "Allowed to be called with no argument to get info on all commands.")],
            args: &[Arg { flags: &["optional", "multiple"], ..arg("command-name", ArgKind::String) }],
            ..doc(
                "Get array of specific Redis command details, or all when no argument is given.",
                "2.8.13",
                "server",
                "O(N) where N is the number of commands to look up",
            )
        },
        ..command("command|info", -2, command_info)
    },
    CommandSpec {
        flags: &["loading", "stale"],
        acl: &["connection"],
        tips: &["nondeterministic_output_order"],
        doc: Doc {
            args: &[Arg { flags: &["optional", "multiple"], ..arg("command-name", ArgKind::String) }],
            ..doc("Get array of specific Redis command documentation", "7.0.0", "server", "O(N) where N is the number of commands to look up")
        },
        ..command("command|docs", -2, command_docs)
    },
];

fn bulk(s: &str) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

fn status(s: &str) -> Frame {
    Frame::Simple(Bytes::copy_from_slice(s.as_bytes()))
}

/// `COMMAND`: info on every command.
fn command_all(_ctx: &mut Ctx, _args: &mut Args) -> CmdResult {
    Ok(Frame::Array(table::all().map(info_frame).collect()))
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
        args.rest().iter().map(|name| table::lookup_full(name).map(info_frame).unwrap_or(Frame::NullBulk)).collect(),
    ))
}

/// `COMMAND DOCS [command-name ...]`: unknown names are left out.
fn command_docs(_ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let specs: Vec<&CommandSpec> = if args.is_empty() {
        table::all().collect()
    } else {
        args.rest().iter().filter_map(|n| table::lookup_full(n)).collect()
    };
    Ok(Frame::Map(specs.into_iter().map(|c| (bulk(c.name), docs_frame(c))).collect()))
}

fn info_frame(c: &CommandSpec) -> Frame {
    Frame::Array(vec![
        bulk(c.name),
        Frame::Integer(c.arity as i64),
        Frame::Set(c.flags.iter().map(|f| status(f)).collect()),
        Frame::Integer(c.keys.0 as i64),
        Frame::Integer(c.keys.1 as i64),
        Frame::Integer(c.keys.2 as i64),
        Frame::Set(c.acl_categories().iter().map(|a| status(&format!("@{a}"))).collect()),
        Frame::Set(c.tips.iter().map(|t| bulk(t)).collect()),
        Frame::Set(c.key_specs.iter().map(key_spec_frame).collect()),
        Frame::Set(c.subcommands.iter().map(info_frame).collect()),
    ])
}

fn key_spec_frame(k: &KeySpec) -> Frame {
    let int = |n: i32| Frame::Integer(n as i64);
    let mut m = Vec::new();
    if let Some(notes) = k.notes {
        m.push((bulk("notes"), bulk(notes)));
    }
    m.push((bulk("flags"), Frame::Set(k.flags.iter().map(|f| status(f)).collect())));
    let begin = match &k.begin {
        BeginSearch::Index(i) => vec![(bulk("type"), bulk("index")), (bulk("spec"), Frame::Map(vec![(bulk("index"), int(*i))]))],
        BeginSearch::Keyword { keyword, startfrom } => vec![
            (bulk("type"), bulk("keyword")),
            (bulk("spec"), Frame::Map(vec![(bulk("keyword"), bulk(keyword)), (bulk("startfrom"), int(*startfrom))])),
        ],
    };
    m.push((bulk("begin_search"), Frame::Map(begin)));
    let find = match &k.find {
        FindKeys::Range { lastkey, keystep, limit } => vec![
            (bulk("type"), bulk("range")),
            (
                bulk("spec"),
                Frame::Map(vec![(bulk("lastkey"), int(*lastkey)), (bulk("keystep"), int(*keystep)), (bulk("limit"), int(*limit))]),
            ),
        ],
        FindKeys::Keynum { keynumidx, firstkey, keystep } => vec![
            (bulk("type"), bulk("keynum")),
            (
                bulk("spec"),
                Frame::Map(vec![
                    (bulk("keynumidx"), int(*keynumidx)),
                    (bulk("firstkey"), int(*firstkey)),
                    (bulk("keystep"), int(*keystep)),
                ]),
            ),
        ],
    };
    m.push((bulk("find_keys"), Frame::Map(find)));
    Frame::Map(m)
}

fn docs_frame(c: &CommandSpec) -> Frame {
    let d = &c.doc;
    let mut m = Vec::new();
    if !d.summary.is_empty() {
        m.push((bulk("summary"), bulk(d.summary)));
    }
    if !d.since.is_empty() {
        m.push((bulk("since"), bulk(d.since)));
    }
    m.push((bulk("group"), bulk(d.group)));
    if !d.complexity.is_empty() {
        m.push((bulk("complexity"), bulk(d.complexity)));
    }
    if !d.doc_flags.is_empty() {
        m.push((bulk("doc_flags"), Frame::Set(d.doc_flags.iter().map(|f| status(f)).collect())));
    }
    if let Some(v) = d.deprecated_since {
        m.push((bulk("deprecated_since"), bulk(v)));
    }
    if let Some(v) = d.replaced_by {
        m.push((bulk("replaced_by"), bulk(v)));
    }
    if !d.history.is_empty() {
        let h = d.history.iter().map(|(v, what)| Frame::Array(vec![bulk(v), bulk(what)])).collect();
        m.push((bulk("history"), Frame::Set(h)));
    }
    if !d.args.is_empty() {
        m.push((bulk("arguments"), args_frame(d.args)));
    }
    if !c.subcommands.is_empty() {
        m.push((bulk("subcommands"), Frame::Map(c.subcommands.iter().map(|s| (bulk(s.name), docs_frame(s))).collect())));
    }
    Frame::Map(m)
}

fn args_frame(args: &[Arg]) -> Frame {
    Frame::Array(
        args.iter()
            .map(|a| {
                let mut m = vec![(bulk("name"), bulk(a.name)), (bulk("type"), bulk(a.kind.name()))];
                if a.key_spec_index >= 0 {
                    m.push((bulk("key_spec_index"), Frame::Integer(a.key_spec_index as i64)));
                }
                if let Some(t) = a.token {
                    m.push((bulk("token"), bulk(t)));
                }
                if let Some(s) = a.summary {
                    m.push((bulk("summary"), bulk(s)));
                }
                if let Some(s) = a.since {
                    m.push((bulk("since"), bulk(s)));
                }
                if let Some(s) = a.deprecated_since {
                    m.push((bulk("deprecated_since"), bulk(s)));
                }
                if !a.flags.is_empty() {
                    m.push((bulk("flags"), Frame::Set(a.flags.iter().map(|f| status(f)).collect())));
                }
                if matches!(a.kind, ArgKind::OneOf | ArgKind::Block) {
                    m.push((bulk("arguments"), args_frame(a.args)));
                }
                Frame::Map(m)
            })
            .collect(),
    )
}

/// `INFO [section ...]`: server, clients and stats. Unknown sections are
/// empty, as in Redis.
fn info(_ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let wanted: Vec<String> = args.rest().iter().map(|s| String::from_utf8_lossy(s).to_ascii_lowercase()).collect();
    let all = wanted.is_empty() || wanted.iter().any(|w| matches!(w.as_str(), "all" | "everything" | "default"));
    let include = |name: &str| all || wanted.iter().any(|w| w == name);
    let rt = stats::with(|r| r.clone());
    let mut sections: Vec<String> = Vec::new();
    if include("server") {
        sections.push(server_section(&rt));
    }
    if include("clients") {
        sections.push(format!("# Clients\r\nconnected_clients:{}\r\nblocked_clients:0\r\n", rt.connected_clients));
    }
    if include("stats") {
        sections.push(format!(
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ntotal_net_input_bytes:{}\r\n\
             total_net_output_bytes:{}\r\nrejected_connections:{}\r\nexpired_keys:{}\r\npgkv_batches:{}\r\npgkv_batch_retries:{}\r\n",
            rt.total_connections_received,
            rt.total_commands_processed,
            rt.total_net_input_bytes,
            rt.total_net_output_bytes,
            rt.rejected_connections,
            rt.expired_keys,
            rt.batches,
            rt.batch_retries,
        ));
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
