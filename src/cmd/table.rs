//! The command table as data: names, arity, flags, key positions and docs,
//! declared once per family and read by dispatch, COMMAND and the SQL API.

use super::Handler;
use crate::error::CmdError;
use bytes::Bytes;
use once_cell::sync::Lazy;
use std::collections::HashMap;

pub struct CommandSpec {
    /// Lowercase full name: `get`, or `client|setname` for a subcommand.
    pub name: &'static str,
    /// Redis's arity: N means exactly N words (name included), -N at least N.
    pub arity: i32,
    /// Redis's command flags, in the order COMMAND INFO prints them.
    pub flags: &'static [&'static str],
    /// Explicit ACL categories (without `@`); implicit ones come from flags.
    pub acl: &'static [&'static str],
    /// Legacy (first key, last key, step).
    pub keys: (i32, i32, i32),
    pub tips: &'static [&'static str],
    pub key_specs: &'static [KeySpec],
    pub doc: Doc,
    /// `None` only for a container that needs a subcommand.
    pub handler: Option<Handler>,
    pub subcommands: &'static [CommandSpec],
    /// Runs inside the batch's PostgreSQL transaction and may use the store.
    pub tx: bool,
}

pub struct KeySpec {
    pub notes: Option<&'static str>,
    pub flags: &'static [&'static str],
    pub begin: BeginSearch,
    pub find: FindKeys,
}

pub enum BeginSearch {
    Index(i32),
    Keyword { keyword: &'static str, startfrom: i32 },
}

pub enum FindKeys {
    Range { lastkey: i32, keystep: i32, limit: i32 },
    Keynum { keynumidx: i32, firstkey: i32, keystep: i32 },
}

pub struct Doc {
    pub summary: &'static str,
    pub since: &'static str,
    pub group: &'static str,
    pub complexity: &'static str,
    pub doc_flags: &'static [&'static str],
    pub deprecated_since: Option<&'static str>,
    pub replaced_by: Option<&'static str>,
    pub history: &'static [(&'static str, &'static str)],
    pub args: &'static [Arg],
}

pub struct Arg {
    pub name: &'static str,
    pub kind: ArgKind,
    pub key_spec_index: i32,
    pub token: Option<&'static str>,
    pub summary: Option<&'static str>,
    pub since: Option<&'static str>,
    pub deprecated_since: Option<&'static str>,
    pub flags: &'static [&'static str],
    pub args: &'static [Arg],
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    String,
    Integer,
    Double,
    Key,
    Pattern,
    UnixTime,
    PureToken,
    OneOf,
    Block,
}

impl ArgKind {
    pub fn name(self) -> &'static str {
        match self {
            ArgKind::String => "string",
            ArgKind::Integer => "integer",
            ArgKind::Double => "double",
            ArgKind::Key => "key",
            ArgKind::Pattern => "pattern",
            ArgKind::UnixTime => "unix-time",
            ArgKind::PureToken => "pure-token",
            ArgKind::OneOf => "oneof",
            ArgKind::Block => "block",
        }
    }
}

/// Defaults for table entries, used with struct update syntax.
pub const fn command(name: &'static str, arity: i32, handler: Handler) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags: &[],
        acl: &[],
        keys: (0, 0, 0),
        tips: &[],
        key_specs: &[],
        doc: doc("", "", "", ""),
        handler: Some(handler),
        subcommands: &[],
        tx: false,
    }
}

pub const fn doc(summary: &'static str, since: &'static str, group: &'static str, complexity: &'static str) -> Doc {
    Doc {
        summary,
        since,
        group,
        complexity,
        doc_flags: &[],
        deprecated_since: None,
        replaced_by: None,
        history: &[],
        args: &[],
    }
}

pub const fn arg(name: &'static str, kind: ArgKind) -> Arg {
    Arg {
        name,
        kind,
        key_spec_index: -1,
        token: None,
        summary: None,
        since: None,
        deprecated_since: None,
        flags: &[],
        args: &[],
    }
}

pub const fn key_arg(name: &'static str, key_spec_index: i32) -> Arg {
    Arg { key_spec_index, ..arg(name, ArgKind::Key) }
}

pub const fn token(name: &'static str, token: &'static str) -> Arg {
    Arg { token: Some(token), ..arg(name, ArgKind::PureToken) }
}

/// A key spec with one key at `index` and nothing more: the common shape.
pub const fn single_key(flags: &'static [&'static str], index: i32) -> KeySpec {
    KeySpec {
        notes: None,
        flags,
        begin: BeginSearch::Index(index),
        find: FindKeys::Range { lastkey: 0, keystep: 1, limit: 0 },
    }
}

impl CommandSpec {
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.contains(&flag)
    }

    pub fn is_subcommand(&self) -> bool {
        self.name.contains('|')
    }

    /// ACL categories as COMMAND INFO prints them: explicit plus implicit,
    /// in Redis's category order.
    pub fn acl_categories(&self) -> Vec<&'static str> {
        const ORDER: [&str; 21] = [
            "keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap", "hyperloglog", "geo",
            "stream", "pubsub", "admin", "fast", "slow", "blocking", "dangerous", "connection", "transaction",
            "scripting",
        ];
        let mut cats: Vec<&str> = self.acl.to_vec();
        if self.has_flag("write") {
            cats.push("write");
        }
        if self.has_flag("readonly") && !self.acl.contains(&"scripting") {
            cats.push("read");
        }
        if self.has_flag("admin") {
            cats.extend(["admin", "dangerous"]);
        }
        if self.has_flag("pubsub") {
            cats.push("pubsub");
        }
        if self.has_flag("fast") {
            cats.push("fast");
        }
        if self.has_flag("blocking") {
            cats.push("blocking");
        }
        if !cats.contains(&"fast") {
            cats.push("slow");
        }
        ORDER.iter().copied().filter(|c| cats.contains(c)).collect()
    }

    pub fn subcommand(&self, name: &[u8]) -> Option<&'static CommandSpec> {
        let lower = name.to_ascii_lowercase();
        self.subcommands
            .iter()
            .find(|s| s.name.split_once('|').map(|(_, sub)| sub.as_bytes() == lower.as_slice()).unwrap_or(false))
            .map(|s| unsafe_static(s))
    }
}

// Table entries live in `static` slices, so references into them are 'static.
fn unsafe_static(s: &CommandSpec) -> &'static CommandSpec {
    // SAFETY: every CommandSpec reachable from `all()` is inside a static slice.
    unsafe { &*(s as *const CommandSpec) }
}

/// Every top-level command, family by family.
pub fn all() -> impl Iterator<Item = &'static CommandSpec> {
    [
        super::connection::COMMANDS,
        super::strings::COMMANDS,
        super::keys::COMMANDS,
        super::server::COMMANDS,
    ]
    .into_iter()
    .flatten()
}

static BY_NAME: Lazy<HashMap<&'static str, &'static CommandSpec>> = Lazy::new(|| all().map(|c| (c.name, c)).collect());

/// A top-level command by name, any case.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    let lower = std::str::from_utf8(name).ok()?.to_ascii_lowercase();
    BY_NAME.get(lower.as_str()).copied()
}

/// `lookup` that also accepts `container|sub` names, as COMMAND INFO does.
pub fn lookup_full(name: &[u8]) -> Option<&'static CommandSpec> {
    match name.iter().position(|&c| c == b'|') {
        None => lookup(name),
        Some(i) => lookup(&name[..i])?.subcommand(&name[i + 1..]),
    }
}

/// Finds the spec `argv` invokes and checks its arity, with Redis's errors.
pub fn resolve(argv: &[Bytes]) -> Result<&'static CommandSpec, CmdError> {
    let name = &argv[0];
    let Some(base) = lookup(name) else {
        return Err(unknown_command(argv));
    };
    let spec = if !base.subcommands.is_empty() && argv.len() >= 2 {
        match base.subcommand(&argv[1]) {
            Some(sub) => sub,
            None => {
                let mut msg = b"ERR unknown subcommand '".to_vec();
                msg.extend_from_slice(truncate(&argv[1], 128));
                msg.extend_from_slice(format!("'. Try {} HELP.", base.name.to_ascii_uppercase()).as_bytes());
                return Err(CmdError::Msg(Bytes::from(crate::error::sanitize(msg))));
            }
        }
    } else {
        base
    };
    let n = argv.len() as i32;
    if (spec.arity > 0 && n != spec.arity) || n < -spec.arity {
        return Err(CmdError::Arity(spec.name.to_string()));
    }
    if spec.handler.is_none() {
        return Err(CmdError::Arity(spec.name.to_string()));
    }
    Ok(spec)
}

fn truncate(b: &[u8], n: usize) -> &[u8] {
    &b[..b.len().min(n)]
}

/// `ERR unknown command 'x', with args beginning with: 'a' 'b' `
fn unknown_command(argv: &[Bytes]) -> CmdError {
    let mut msg = b"ERR unknown command '".to_vec();
    msg.extend_from_slice(truncate(&argv[0], 128));
    msg.extend_from_slice(b"', with args beginning with: ");
    let mut args: Vec<u8> = Vec::new();
    for a in &argv[1..] {
        if args.len() >= 128 {
            break;
        }
        let room = 128 - args.len();
        args.push(b'\'');
        args.extend_from_slice(truncate(a, room));
        args.extend_from_slice(b"' ");
    }
    msg.extend_from_slice(&args);
    CmdError::Msg(Bytes::from(crate::error::sanitize(msg)))
}
