//! Server commands: COMMAND (COUNT, INFO, DOCS, LIST, GETKEYS,
//! GETKEYSANDFLAGS, HELP) and INFO.
//!
//! COMMAND INFO and COMMAND DOCS are rendered from the command table, in the
//! shapes Redis 7.0 uses (sets and maps in RESP3, flattened in RESP2).

use super::table::{self, local, tx, Binding, CommandSpec};
use super::{eq_ic, Args, Ctx};
use crate::error::{CmdError, CmdResult};
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
    local("command|list", command_list),
    local("command|getkeys", command_getkeys),
    local("command|getkeysandflags", command_getkeysandflags),
    local("command|help", command_help),
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

/// `COMMAND LIST [FILTERBY MODULE name|ACLCAT category|PATTERN pattern]`:
/// the names of every command and subcommand (as `config|get`), in
/// COMMAND's order (Redis's is its hash table's).
fn command_list(_ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let keep: Box<dyn Fn(&CommandSpec) -> bool> = match args.rest() {
        [] => Box::new(|_| true),
        [by, kind, arg] if eq_ic(by, "filterby") => {
            if eq_ic(kind, "module") {
                // No module commands here.
                Box::new(|_| false)
            } else if eq_ic(kind, "aclcat") {
                let category = format!("@{}", String::from_utf8_lossy(arg)).to_ascii_lowercase();
                Box::new(move |c| categories(c).iter().any(|have| have.eq_ignore_ascii_case(&category)))
            } else if eq_ic(kind, "pattern") {
                // Redis matches without case; names are lowercase.
                let pattern = arg.to_ascii_lowercase();
                Box::new(move |c| pgkv_resp::glob::matches(&pattern, c.name.as_bytes()))
            } else {
                return Err(CmdError::syntax());
            }
        }
        _ => return Err(CmdError::syntax()),
    };
    let names = table::all().flat_map(|c| std::iter::once(c).chain(&c.subcommands)).filter(|c| keep(c)).map(|c| bulk(&c.name));
    Ok(Frame::Array(names.collect()))
}

/// A command's ACL categories (`@write`, ...), from its COMMAND INFO entry.
fn categories(c: &CommandSpec) -> Vec<String> {
    match &c.info {
        Frame::Array(f) => match f.get(6) {
            Some(Frame::Set(v) | Frame::Array(v)) => v.iter().filter_map(table::bulk_str).collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// `COMMAND GETKEYS command [arg ...]`
fn command_getkeys(_ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    getkeys(args.rest(), false)
}

/// `COMMAND GETKEYSANDFLAGS command [arg ...]`
fn command_getkeysandflags(_ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    getkeys(args.rest(), true)
}

/// Redis's `getKeysSubcommandImpl`: the keys of a full command, found by
/// its key specifications (`getKeysUsingKeySpecs`), or, where those do not
/// apply or the arguments do not fit them, by the command's own key
/// function as Redis has it (`fallback_keys`).
fn getkeys(argv: &[Bytes], with_flags: bool) -> CmdResult {
    let base = table::lookup(&argv[0]).ok_or(CmdError::Static("ERR Invalid command specified"))?;
    let cmd = if argv.len() == 1 || base.subcommands.is_empty() {
        base
    } else {
        base.subcommand(&argv[1]).ok_or(CmdError::Static("ERR Invalid command specified"))?
    };
    let specs = key_specs(cmd);
    if specs.is_empty() {
        return Err(CmdError::Static("ERR The command has no key arguments"));
    }
    let n = argv.len() as i64;
    if (cmd.arity > 0 && cmd.arity as i64 != n) || n < -(cmd.arity as i64) {
        return Err(CmdError::Static("ERR Invalid number of arguments specified for command"));
    }
    // Specs whose flags depend on the arguments (SET's GET, BITFIELD's
    // subcommands) leave the keys to the command's own function.
    let by_specs = if specs.iter().any(|s| s.variable_flags) { None } else { keys_by_specs(&specs, argv) };
    let found = by_specs.unwrap_or_else(|| fallback_keys(&cmd.name, argv));
    if found.is_empty() {
        if cmd.has_flag("no_mandatory_keys") {
            return Ok(Frame::Array(Vec::new()));
        }
        return Err(CmdError::Static("ERR Invalid arguments specified for command"));
    }
    Ok(Frame::Array(
        found
            .into_iter()
            .map(|(pos, flags)| {
                let key = Frame::Bulk(argv[pos].clone());
                if with_flags {
                    Frame::Array(vec![key, flags])
                } else {
                    key
                }
            })
            .collect(),
    ))
}

/// One key specification of COMMAND INFO.
struct KeySpec {
    /// The flags as COMMAND INFO shows them (a set), for GETKEYSANDFLAGS.
    flags: Frame,
    not_key: bool,
    variable_flags: bool,
    begin: Begin,
    find: Find,
}

enum Begin {
    Index(i64),
    /// The argument after `keyword`, searched from `startfrom` (from the
    /// end when negative).
    Keyword(Vec<u8>, i64),
    Unknown,
}

enum Find {
    Range { lastkey: i64, keystep: i64, limit: i64 },
    Keynum { keynumidx: i64, firstkey: i64, keystep: i64 },
    Unknown,
}

/// The key specifications in a command's COMMAND INFO entry.
fn key_specs(cmd: &CommandSpec) -> Vec<KeySpec> {
    let Frame::Array(fields) = &cmd.info else { return Vec::new() };
    let Some(Frame::Set(specs) | Frame::Array(specs)) = fields.get(8) else { return Vec::new() };
    specs
        .iter()
        .map(|spec| {
            let flags = field(spec, "flags").cloned().unwrap_or(Frame::Set(Vec::new()));
            let has = |flag: &str| matches!(&flags, Frame::Set(v) | Frame::Array(v) if v.iter().any(|f| table::bulk_str(f).as_deref() == Some(flag)));
            let (not_key, variable_flags) = (has("not_key"), has("variable_flags"));
            let part = |name: &str| field(spec, name).map(|p| (field(p, "type").and_then(table::bulk_str).unwrap_or_default(), field(p, "spec")));
            let num = |spec: Option<&Frame>, name: &str| match spec.and_then(|s| field(s, name)) {
                Some(Frame::Integer(n)) => *n,
                _ => 0,
            };
            let begin = match part("begin_search") {
                Some((t, s)) if t == "index" => Begin::Index(num(s, "index")),
                Some((t, s)) if t == "keyword" => Begin::Keyword(
                    s.and_then(|s| field(s, "keyword")).and_then(table::bulk_str).unwrap_or_default().into_bytes(),
                    num(s, "startfrom"),
                ),
                _ => Begin::Unknown,
            };
            let find = match part("find_keys") {
                Some((t, s)) if t == "range" => Find::Range { lastkey: num(s, "lastkey"), keystep: num(s, "keystep"), limit: num(s, "limit") },
                Some((t, s)) if t == "keynum" => {
                    Find::Keynum { keynumidx: num(s, "keynumidx"), firstkey: num(s, "firstkey"), keystep: num(s, "keystep") }
                }
                _ => Find::Unknown,
            };
            KeySpec { flags, not_key, variable_flags, begin, find }
        })
        .collect()
}

/// The value under `name` in a RESP3 map (the command table holds Redis's
/// RESP3 metadata).
fn field<'f>(map: &'f Frame, name: &str) -> Option<&'f Frame> {
    match map {
        Frame::Map(pairs) => table::docs_for(pairs, name),
        _ => None,
    }
}

/// Redis's `getKeysUsingKeySpecs`: each key's position and its spec's
/// flags; `None` when a spec cannot be followed (an unknown kind, a key
/// count that is not a count, positions past the end).
fn keys_by_specs(specs: &[KeySpec], argv: &[Bytes]) -> Option<Vec<(usize, Frame)>> {
    let argc = argv.len() as i64;
    let mut out = Vec::new();
    for spec in specs.iter().filter(|s| !s.not_key) {
        let first = match &spec.begin {
            Begin::Index(i) => *i,
            Begin::Keyword(word, from) => {
                let (start, end) = if *from > 0 { (*from, argc - 1) } else { (argc + from, 1) };
                let mut i = start;
                let mut at = 0;
                while i != end {
                    if i >= argc || i < 1 {
                        break;
                    }
                    if argv[i as usize].eq_ignore_ascii_case(word) {
                        at = i + 1;
                        break;
                    }
                    i = if start <= end { i + 1 } else { i - 1 };
                }
                if at == 0 {
                    continue; // keyword absent: no keys of this spec
                }
                at
            }
            Begin::Unknown => return None,
        };
        let (first, last, step) = match spec.find {
            Find::Range { lastkey, keystep, limit } => {
                let last = if lastkey >= 0 {
                    first + lastkey
                } else if limit == 0 {
                    argc + lastkey
                } else {
                    first + ((argc - first) / limit + lastkey)
                };
                (first, last, keystep)
            }
            Find::Keynum { keynumidx, firstkey, keystep } => {
                if keynumidx >= argc {
                    return None;
                }
                let count = pgkv_resp::num::parse_i64(argv.get((first + keynumidx) as usize)?)?;
                if count < 0 {
                    return None;
                }
                let first = first + firstkey;
                (first, first + count - 1, keystep)
            }
            Find::Unknown => return None,
        };
        if last >= argc || last < first || first >= argc || step <= 0 {
            return None;
        }
        let mut i = first;
        while i <= last {
            out.push((i as usize, spec.flags.clone()));
            i += step;
        }
    }
    Some(out)
}

/// The key functions Redis falls back on when a command's key specs
/// cannot be followed or have variable flags: `setGetKeys`,
/// `bitfieldGetKeys`, `sortGetKeys`, `sortROGetKeys`, and `genericGetKeys`
/// behind EVAL, FCALL, LMPOP, ZUNIONSTORE and the like (which reads its key
/// count with C's `atoi` and gives its keys no flags).
fn fallback_keys(name: &str, argv: &[Bytes]) -> Vec<(usize, Frame)> {
    let flags = |f: &[&str]| Frame::Set(f.iter().map(|s| Frame::Simple(Bytes::copy_from_slice(s.as_bytes()))).collect());
    let generic = |store: usize, count_at: usize, first: usize| {
        let count = atoi(&argv[count_at]);
        if count < 1 || count > (argv.len() - first) as i64 {
            return Vec::new();
        }
        let mut keys: Vec<(usize, Frame)> = (0..count as usize).map(|i| (first + i, flags(&[]))).collect();
        if store > 0 {
            keys.push((store, flags(&[])));
        }
        keys
    };
    match name {
        "set" => {
            let get = argv.iter().skip(3).any(|a| eq_ic(a, "get"));
            vec![(1, if get { flags(&["RW", "access", "update"]) } else { flags(&["OW", "update"]) })]
        }
        "bitfield" => {
            let mut readonly = true;
            let mut i = 2;
            while i < argv.len() {
                let remaining = argv.len() - i - 1;
                let arg = &argv[i];
                if eq_ic(arg, "get") && remaining >= 2 {
                    i += 2;
                } else if (eq_ic(arg, "set") || eq_ic(arg, "incrby")) && remaining >= 3 {
                    readonly = false;
                    break;
                } else if eq_ic(arg, "overflow") && remaining >= 1 {
                    i += 1;
                } else {
                    readonly = false; // a syntax error: not read-only, to be safe
                    break;
                }
                i += 1;
            }
            vec![(1, if readonly { flags(&["RO", "access"]) } else { flags(&["RW", "access", "update"]) })]
        }
        "sort" => {
            let mut keys = vec![(1, flags(&["RO", "access"]))];
            let mut store = None;
            let mut i = 2;
            while i < argv.len() {
                let arg = &argv[i];
                if eq_ic(arg, "limit") {
                    i += 2;
                } else if eq_ic(arg, "get") || eq_ic(arg, "by") {
                    i += 1;
                } else if eq_ic(arg, "store") && i + 1 < argv.len() {
                    store = Some(i + 1); // the last STORE counts, as in SORT
                }
                i += 1;
            }
            keys.extend(store.map(|at| (at, flags(&["OW", "update"]))));
            keys
        }
        "sort_ro" => vec![(1, flags(&["RO", "access"]))],
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro" | "blmpop" | "bzmpop" => generic(0, 2, 3),
        "lmpop" | "zmpop" | "sintercard" | "zintercard" | "zunion" | "zinter" | "zdiff" => generic(0, 1, 2),
        "zunionstore" | "zinterstore" | "zdiffstore" => generic(1, 2, 3),
        _ => Vec::new(),
    }
}

/// C's `atoi`: leading white space, a sign, digits up to the first other
/// byte; 0 when there are none.
fn atoi(b: &[u8]) -> i64 {
    let mut i = 0;
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r') {
        i += 1;
    }
    let negative = i < b.len() && b[i] == b'-';
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    let mut n: i64 = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        n = n.saturating_mul(10).saturating_add((b[i] - b'0') as i64);
        i += 1;
    }
    if negative {
        -n
    } else {
        n
    }
}

/// `COMMAND HELP`
fn command_help(_ctx: &mut Ctx, _args: &mut Args) -> CmdResult {
    const LINES: &[&str] = &[
        "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "(no subcommand)",
        "    Return details about all Redis commands.",
        "COUNT",
        "    Return the total number of commands in this Redis server.",
        "LIST",
        "    Return a list of all commands in this Redis server.",
        "INFO [<command-name> ...]",
        "    Return details about multiple Redis commands.",
        "    If no command names are given, documentation details for all",
        "    commands are returned.",
        "DOCS [<command-name> ...]",
        "    Return documentation details about multiple Redis commands.",
        "    If no command names are given, documentation details for all",
        "    commands are returned.",
        "GETKEYS <full-command>",
        "    Return the keys from a full Redis command.",
        "GETKEYSANDFLAGS <full-command>",
        "    Return the keys and the access flags from a full Redis command.",
        "HELP",
        "    Prints this help.",
    ];
    Ok(Frame::Array(LINES.iter().map(|l| Frame::Simple(Bytes::from_static(l.as_bytes()))).collect()))
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
