//! The command layer: one table of command specs, read by the RESP dispatcher,
//! by the SQL functions and by COMMAND INFO/DOCS.
//!
//! Each family file (`connection`, `strings`, `keys`, `server`) declares its
//! commands as data, `CommandSpec`s, and implements their handlers. A handler
//! parses its arguments with [`Args`] and returns a [`Frame`]; it touches
//! storage only through [`Store`].

pub mod bitmaps;
pub mod blocking;
pub mod clients;
pub mod config;
pub mod connection;
pub mod functions;
pub mod hashes;
pub mod keys;
pub mod lists;
pub mod multi;
pub mod notify;
pub mod pubsub;
pub mod sample;
pub mod scripting;
pub mod server;
pub mod sets;
pub mod sort;
pub mod strings;
pub mod zsets;
pub mod table;

use crate::error::{CmdError, CmdResult, NOAUTH, NOT_FROM_SQL};
use crate::session::{Origin, Session};
use crate::store::Store;
use bytes::Bytes;
use pgkv_resp::Frame;

pub use table::{resolve, CommandSpec};

/// Every family's handler bindings.
fn families() -> impl Iterator<Item = &'static [table::Binding]> {
    [
        config::COMMANDS,
        connection::COMMANDS,
        strings::COMMANDS,
        bitmaps::COMMANDS,
        keys::COMMANDS,
        hashes::COMMANDS,
        lists::COMMANDS,
        sets::COMMANDS,
        zsets::COMMANDS,
        sort::COMMANDS,
        server::COMMANDS,
        pubsub::COMMANDS,
        multi::COMMANDS,
        blocking::COMMANDS,
        clients::COMMANDS,
        scripting::COMMANDS,
        functions::COMMANDS,
    ]
    .into_iter()
}

/// What a handler may use: its client's session and, when the command runs
/// inside a transaction, the store.
pub struct Ctx<'a> {
    pub session: &'a mut Session,
    pub(crate) store: Option<Store<'a>>,
    /// Wall-clock milliseconds, fixed for the whole command as Redis does.
    pub now_ms: i64,
    /// The command has Redis's `write` flag: its lookups lock key rows.
    write: bool,
}

impl<'a> Ctx<'a> {
    pub fn new(session: &'a mut Session, store: Option<Store<'a>>) -> Ctx<'a> {
        Ctx { session, store, now_ms: now_ms(), write: false }
    }

    /// The store. Only commands declared with `tx: true` run with one.
    pub fn store(&self) -> Store<'a> {
        self.store.expect("a command that uses the store must be declared with tx: true").for_command(self.write)
    }
}

impl Ctx<'_> {
    /// Reports a keyspace event on `key` in the client's database.
    pub fn notify(&self, class: u32, event: &'static str, key: &[u8]) {
        notify::emit(class, event, self.session.db, key);
    }

    /// Whether a blind write of `key` creates it, for its `new` event: asked
    /// (with a lookup the write would not otherwise make) only while `new`
    /// events may be wanted; `false` otherwise.
    pub fn creates(&self, key: &[u8]) -> Result<bool, CmdError> {
        if !notify::maybe_wanted(notify::NEW) {
            return Ok(false);
        }
        Ok(self.store().lookup(self.session.db, key, self.now_ms, crate::store::Fetch::Meta)?.is_none())
    }

    /// Whether a blocking command may park its client: not inside EXEC or
    /// a script, and only for RESP clients (as in Redis).
    pub fn may_block(&self) -> bool {
        self.session.origin == Origin::Resp && !self.session.in_exec && !self.session.in_script
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub type Handler = fn(&mut Ctx, &mut Args) -> CmdResult;

/// A cursor over a command's arguments (mini-redis's `Parse`). It starts after
/// the command name (and the subcommand name, for container commands).
pub struct Args<'a> {
    argv: &'a [Bytes],
    pos: usize,
}

impl<'a> Args<'a> {
    pub fn new(argv: &'a [Bytes], pos: usize) -> Args<'a> {
        Args { argv, pos }
    }

    pub fn remaining(&self) -> usize {
        self.argv.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The next argument. Arity was checked by the dispatcher, so handlers call
    /// this only where the spec guarantees an argument or after `remaining()`.
    pub fn next_bytes(&mut self) -> Result<Bytes, CmdError> {
        let arg = self.argv.get(self.pos).cloned().ok_or_else(CmdError::syntax)?;
        self.pos += 1;
        Ok(arg)
    }

    /// The command's `i`-th word (0 is the command name).
    pub fn word(&self, i: usize) -> Option<&'a Bytes> {
        self.argv.get(i)
    }

    pub fn peek(&self) -> Option<&'a Bytes> {
        self.argv.get(self.pos)
    }

    /// The next argument as an integer, with Redis's parsing rules.
    pub fn next_i64(&mut self) -> Result<i64, CmdError> {
        let arg = self.next_bytes()?;
        parse_i64(&arg)
    }

    pub fn rest(&mut self) -> &'a [Bytes] {
        let rest = &self.argv[self.pos..];
        self.pos = self.argv.len();
        rest
    }
}

pub fn parse_i64(arg: &[u8]) -> Result<i64, CmdError> {
    pgkv_resp::num::parse_i64(arg).ok_or_else(CmdError::not_integer)
}

/// Redis's `getPositiveLongFromObjectOrReply`: a non-negative integer;
/// any failure answers `msg` (Redis's default: "must be positive").
pub fn parse_non_negative(arg: &[u8], msg: Option<&'static str>) -> Result<i64, CmdError> {
    pgkv_resp::num::parse_i64(arg)
        .filter(|n| *n >= 0)
        .ok_or(CmdError::Static(msg.unwrap_or("ERR value is out of range, must be positive")))
}

/// Redis's `getIntFromObjectOrReply`: an integer that must fit in a C int.
/// `msg`, when given, replaces both of Redis's default errors.
pub fn parse_i32_or(arg: &[u8], msg: Option<&'static str>) -> Result<i32, CmdError> {
    let custom = || msg.map(CmdError::Static);
    let n = parse_i64(arg).map_err(|e| custom().unwrap_or(e))?;
    i32::try_from(n).map_err(|_| {
        custom().unwrap_or_else(|| CmdError::msg("ERR value is out of range, value must between -2147483648 and 2147483647"))
    })
}

/// The cursor and options shared by SCAN, HSCAN, SSCAN and ZSCAN, parsed
/// as Redis's `scanGenericCommand` does.
pub struct ScanOptions {
    pub cursor: u64,
    pub count: i64,
    pub pattern: Option<Bytes>,
    pub type_name: Option<Bytes>,
}

impl ScanOptions {
    pub fn parse(args: &mut Args, allow_type: bool) -> Result<ScanOptions, CmdError> {
        let cursor_arg = args.next_bytes()?;
        let cursor = parse_cursor(&cursor_arg).ok_or_else(|| CmdError::msg("ERR invalid cursor"))?;
        let mut o = ScanOptions { cursor, count: 10, pattern: None, type_name: None };
        while let Some(opt) = args.peek().cloned() {
            args.next_bytes()?;
            if eq_ic(&opt, "count") && !args.is_empty() {
                o.count = args.next_i64()?;
                if o.count < 1 {
                    return Err(CmdError::syntax());
                }
            } else if eq_ic(&opt, "match") && !args.is_empty() {
                o.pattern = Some(args.next_bytes()?);
            } else if allow_type && eq_ic(&opt, "type") && !args.is_empty() {
                o.type_name = Some(args.next_bytes()?);
            } else {
                return Err(CmdError::syntax());
            }
        }
        Ok(o)
    }

    /// One page of a member scan (HSCAN, SSCAN, ZSCAN) whose cursor is the
    /// members' insertion number: `fetch(from, count)` returns (seq, item)
    /// rows with seq >= from. Returns the next cursor (0 when done).
    pub fn page<T>(&self, fetch: impl FnOnce(i64, i64) -> Result<Vec<(i64, T)>, CmdError>) -> Result<(u64, Vec<T>), CmdError> {
        let from = i64::try_from(self.cursor).unwrap_or(i64::MAX);
        let rows = fetch(from, self.count)?;
        let next = if (rows.len() as i64) < self.count { 0 } else { rows.last().map(|(s, _)| *s as u64 + 1).unwrap_or(0) };
        Ok((next, rows.into_iter().map(|(_, t)| t).collect()))
    }

    /// MATCH, with Redis's shortcut for a lone `*`.
    pub fn matches(&self, item: &[u8]) -> bool {
        match self.pattern.as_deref() {
            None | Some(b"*") => true,
            Some(p) => pgkv_resp::glob::matches(p, item),
        }
    }
}

/// Redis parses cursors with `strtoul`: an optional sign, digits (none at
/// all reads as 0), no leading space; a negative number wraps around.
fn parse_cursor(arg: &[u8]) -> Option<u64> {
    let (neg, digits) = match arg.first() {
        Some(b'-') => (true, &arg[1..]),
        Some(b'+') => (false, &arg[1..]),
        _ => (false, arg),
    };
    if digits.is_empty() {
        return if arg.is_empty() { Some(0) } else { None };
    }
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(if neg { n.wrapping_neg() } else { n })
}

thread_local! {
    static RNG: std::cell::RefCell<rand::rngs::SmallRng> =
        std::cell::RefCell::new(<rand::rngs::SmallRng as rand::SeedableRng>::from_entropy());
}

/// Runs `f` with the worker's (or session's) random source.
pub fn with_rng<R>(f: impl FnOnce(&mut rand::rngs::SmallRng) -> R) -> R {
    RNG.with(|r| f(&mut r.borrow_mut()))
}

/// A random index below `len` (which must not be 0).
pub fn random_index(_ctx: &Ctx, len: usize) -> usize {
    RNG.with(|r| rand::Rng::gen_range(&mut *r.borrow_mut(), 0..len))
}

/// Indices for the random-sample commands (HRANDFIELD, SRANDMEMBER,
/// ZRANDMEMBER): a positive `count` picks distinct elements (at most all of
/// them), a negative one picks |count| elements that may repeat.
pub fn random_sample(_ctx: &Ctx, len: usize, count: i64) -> Vec<usize> {
    if len == 0 || count == 0 {
        return Vec::new();
    }
    RNG.with(|r| {
        let mut rng = r.borrow_mut();
        if count < 0 {
            (0..count.unsigned_abs()).map(|_| rand::Rng::gen_range(&mut *rng, 0..len)).collect()
        } else if count as usize >= len {
            (0..len).collect()
        } else {
            let mut picked = rand::seq::index::sample(&mut *rng, len, count as usize).into_vec();
            picked.sort_unstable();
            picked
        }
    })
}

/// What LMPOP, BLMPOP, ZMPOP and BZMPOP share after the timeout:
/// `numkeys key [key ...] <end> [COUNT count]`, with `end` reading the word
/// that picks the end (LEFT|RIGHT, MIN|MAX). Returns the keys, the end and
/// the count if given.
pub fn mpop_args(args: &mut Args, end: fn(&[u8]) -> Result<bool, CmdError>) -> Result<(Vec<Bytes>, bool, Option<i64>), CmdError> {
    let numkeys = pgkv_resp::num::parse_i64(&args.next_bytes()?)
        .filter(|n| *n > 0)
        .ok_or_else(|| CmdError::msg("ERR numkeys should be greater than 0"))?;
    if numkeys as u64 + 1 > args.remaining() as u64 {
        return Err(CmdError::syntax());
    }
    let keys: Vec<Bytes> = (0..numkeys).map(|_| args.next_bytes()).collect::<Result<_, _>>()?;
    let which = end(&args.next_bytes()?)?;
    let mut count = None;
    while let Some(opt) = args.peek().cloned() {
        args.next_bytes()?;
        if count.is_none() && eq_ic(&opt, "count") && !args.is_empty() {
            let n = pgkv_resp::num::parse_i64(&args.next_bytes()?).filter(|n| *n > 0);
            count = Some(n.ok_or_else(|| CmdError::msg("ERR count should be greater than 0"))?);
        } else {
            return Err(CmdError::syntax());
        }
    }
    Ok((keys, which, count))
}

/// Redis's start/stop normalisation for ranks and list indexes (LRANGE,
/// LTRIM, ZRANGE, ZREMRANGEBYRANK): negative counts from the end; `None`
/// is an empty range.
pub fn clamp_range(mut start: i64, mut end: i64, len: i64) -> Option<(i64, i64)> {
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    if start > end || start >= len {
        return None;
    }
    Some((start, end.min(len - 1)))
}

pub fn eq_ic(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// Runs one command. Every caller goes through here: the worker for RESP
/// clients, and the SQL functions.
pub fn dispatch(ctx: &mut Ctx, argv: &[Bytes]) -> Frame {
    match run(ctx, argv) {
        Ok(frame) => frame,
        Err(e) => e.into_frame(),
    }
}

fn run(ctx: &mut Ctx, argv: &[Bytes]) -> CmdResult {
    let spec = if ctx.session.in_script {
        resolve_from_script(argv)?
    } else {
        match admit(ctx, argv) {
            Ok(spec) => spec,
            Err(e) => return Err(reject(ctx, argv, e)),
        }
    };
    if let Some(queue) = ctx.session.multi.as_mut() {
        if !multi::runs_inside_multi(&spec.name) {
            queue.queued.push(argv.to_vec());
            return Ok(Frame::simple("QUEUED"));
        }
    }
    ctx.write = spec.has_flag("write");
    let handler = spec.handler.expect("resolve only returns runnable commands");
    // The keys the command changes are touched (WATCH, blocked clients) by
    // its keyspace events (`notify::emit`); a failed attempt takes its
    // touches back with its events.
    let mark = crate::shared::touch_mark();
    let mut attempts = 0;
    loop {
        let mut args = Args::new(argv, if spec.is_subcommand() { 2 } else { 1 });
        let result = handler(ctx, &mut args);
        if result.is_err() {
            notify::discard();
            crate::shared::untouch(mark);
        }
        match result {
            Err(CmdError::Retry) if attempts < 3 => attempts += 1,
            Ok(frame) => {
                if let Some(store) = ctx.store {
                    notify::flush(store, ctx.session.origin)?;
                }
                return Ok(frame);
            }
            other => return other,
        }
    }
}

/// The checks before a command runs or is queued, in Redis's order
/// (`processCommand`): known, arity, authenticated, allowed here.
fn admit(ctx: &Ctx, argv: &[Bytes]) -> Result<&'static CommandSpec, CmdError> {
    if ctx.session.origin == Origin::Resp && crate::gucs::command_disabled(&argv[0]) {
        return Err(table::unknown_command(argv));
    }
    let spec = resolve(argv)?;
    if !ctx.session.authenticated && !spec.has_flag("no_auth") {
        return Err(CmdError::Static(NOAUTH));
    }
    if ctx.session.origin == Origin::Sql && spec.has_flag("noscript") && !scripting::runs_from_sql(spec) {
        return Err(CmdError::Static(NOT_FROM_SQL));
    }
    if ctx.session.multi.is_some() && spec.has_flag("no_multi") {
        return Err(CmdError::Static("ERR Command not allowed inside a transaction"));
    }
    if ctx.session.proto == pgkv_resp::Protocol::Resp2 && ctx.session.subs.any() && !pubsub::allowed_while_subscribed(&spec.name) {
        return Err(CmdError::msg(format!(
            "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            spec.name
        )));
    }
    Ok(spec)
}

/// Redis's `rejectCommand`: a refused command inside MULTI makes EXEC
/// fail; a refused EXEC discards the transaction and says why.
fn reject(ctx: &mut Ctx, argv: &[Bytes], e: CmdError) -> CmdError {
    if let Some(queue) = ctx.session.multi.as_mut() {
        queue.dirty = true;
    }
    // SQL has no MULTI to discard: its refusal stays plain.
    if !eq_ic(&argv[0], "exec") || ctx.session.origin == Origin::Sql {
        return e;
    }
    ctx.session.multi = None;
    ctx.session.watched.clear();
    let text = e.text();
    let reason = text.strip_prefix(b"ERR ").unwrap_or(&text);
    let mut msg = b"EXECABORT Transaction discarded because of: ".to_vec();
    msg.extend_from_slice(reason);
    CmdError::Msg(Bytes::from(msg))
}

/// A command called by a script (`redis.call`), with Redis's scriptCall
/// errors and checks: `noscript` commands, and writes from read-only
/// scripts, are refused.
fn resolve_from_script(argv: &[Bytes]) -> Result<&'static CommandSpec, CmdError> {
    let spec = match resolve(argv) {
        Ok(spec) if !crate::gucs::command_disabled(&argv[0]) => spec,
        Err(CmdError::Arity(_)) => return Err(CmdError::Static("ERR Wrong number of args calling Redis command from script")),
        _ => return Err(CmdError::Static("ERR Unknown Redis command called from script")),
    };
    crate::lua::check_script_command(spec)?;
    Ok(spec)
}
