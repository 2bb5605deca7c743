//! Pub/sub: SUBSCRIBE and friends, PUBLISH, SPUBLISH, PUBSUB.
//!
//! A worker keeps its own clients' subscriptions in a process-local
//! registry and publishes per-channel client counts to `kv.subscriptions`,
//! so a publisher anywhere (another worker, `kv.publish()` in SQL) can count
//! every receiver.
//!
//! Delivery happens only after the publishing transaction commits:
//! - to this worker's own subscribers through the outbox, which the worker
//!   drains after the batch's commit (a rolled-back batch clears it);
//! - to other workers through Postgres NOTIFY on channel `pgkv`, which
//!   Postgres sends at commit and drops on rollback. NOTIFY's limits do not
//!   leak through: payloads are base64 with a per-process sequence number
//!   (so equal messages are never collapsed), and a message that does not
//!   fit in a payload travels through `kv.pubsub_spill`.
//!
//! A worker sends NOTIFY only when another process has matching
//! subscribers; with one worker, PUBLISH between its clients runs no SQL.

use super::table::{local, tx, Binding};
use super::{Args, Ctx};
use crate::error::{CmdError, CmdResult};
use crate::session::{Origin, Subscriptions};
use crate::store::Store;
use base64::Engine;
use bytes::Bytes;
use pgkv_resp::Frame;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap};

pub const COMMANDS: &[Binding] = &[
    local("subscribe", subscribe),
    local("unsubscribe", unsubscribe),
    local("psubscribe", psubscribe),
    local("punsubscribe", punsubscribe),
    local("ssubscribe", ssubscribe),
    local("sunsubscribe", sunsubscribe),
    tx("publish", publish),
    tx("spublish", spublish),
    tx("pubsub|channels", pubsub_channels),
    tx("pubsub|numsub", pubsub_numsub),
    tx("pubsub|numpat", pubsub_numpat),
    tx("pubsub|shardchannels", pubsub_shardchannels),
    tx("pubsub|shardnumsub", pubsub_shardnumsub),
];

/// The NOTIFY channel every worker listens on.
pub const NOTIFY_CHANNEL: &std::ffi::CStr = c"pgkv";
/// NOTIFY refuses payloads of 8000 bytes and more.
const PAYLOAD_MAX: usize = 7900;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Channel,
    Pattern,
    Shard,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Channel, Kind::Pattern, Kind::Shard];

    fn code(self) -> u8 {
        match self {
            Kind::Channel => b'c',
            Kind::Pattern => b'p',
            Kind::Shard => b's',
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    fn list(self, subs: &Subscriptions) -> &Vec<Bytes> {
        match self {
            Kind::Channel => &subs.channels,
            Kind::Pattern => &subs.patterns,
            Kind::Shard => &subs.shard,
        }
    }

    fn list_mut(self, subs: &mut Subscriptions) -> &mut Vec<Bytes> {
        match self {
            Kind::Channel => &mut subs.channels,
            Kind::Pattern => &mut subs.patterns,
            Kind::Shard => &mut subs.shard,
        }
    }

    /// The count Redis reports after (un)subscribing: shard subscriptions
    /// are counted apart from channels and patterns.
    fn count(self, subs: &Subscriptions) -> i64 {
        match self {
            Kind::Shard => subs.shard.len() as i64,
            _ => (subs.channels.len() + subs.patterns.len()) as i64,
        }
    }

    fn subscribe_word(self) -> &'static str {
        match self {
            Kind::Channel => "subscribe",
            Kind::Pattern => "psubscribe",
            Kind::Shard => "ssubscribe",
        }
    }

    fn unsubscribe_word(self) -> &'static str {
        match self {
            Kind::Channel => "unsubscribe",
            Kind::Pattern => "punsubscribe",
            Kind::Shard => "sunsubscribe",
        }
    }
}

/// One message for one local client, and the job whose command produced it
/// (`usize::MAX` for messages from other processes).
pub struct Outgoing {
    pub job: usize,
    pub client: u64,
    pub frame: Frame,
}

#[derive(Default)]
struct Registry {
    /// Client ids per channel, pattern and shard channel, in subscription order.
    subs: [HashMap<Bytes, Vec<u64>>; 3],
    /// Channels whose count must be written to kv.subscriptions.
    dirty: BTreeSet<(Kind, Bytes)>,
    outbox: Vec<Outgoing>,
}

thread_local! {
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry::default());
    static CURRENT_JOB: Cell<usize> = const { Cell::new(usize::MAX) };
    static SEQ: Cell<u64> = const { Cell::new(0) };
}

/// The worker says which job of the batch runs now, so a message lands
/// between the right replies.
pub fn set_current_job(job: usize) {
    CURRENT_JOB.with(|c| c.set(job));
}

/// Messages for local clients whose transaction committed.
pub fn take_outbox() -> Vec<Outgoing> {
    REGISTRY.with(|r| std::mem::take(&mut r.borrow_mut().outbox))
}

/// Called by the transaction callback: an aborted transaction's messages
/// are never delivered.
pub fn xact_event(event: pgrx::pg_sys::XactEvent::Type) {
    use pgrx::pg_sys::XactEvent::*;
    if matches!(event, XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_ABORT) {
        REGISTRY.with(|r| {
            if let Ok(mut r) = r.try_borrow_mut() {
                r.outbox.clear();
            }
        });
    }
}

/// Subscriptions whose counts changed since the last call: (kind code,
/// channel, this worker's client count).
pub fn take_dirty() -> Vec<(u8, Bytes, i32)> {
    REGISTRY.with(|r| {
        let mut r = r.borrow_mut();
        let dirty = std::mem::take(&mut r.dirty);
        dirty.into_iter().map(|(k, ch)| (k.code(), ch.clone(), r.subs[k.index()].get(&ch).map_or(0, |v| v.len()) as i32)).collect()
    })
}

/// This worker's distinct channels, patterns and shard channels (INFO).
pub fn local_counts() -> (usize, usize, usize) {
    REGISTRY.with(|r| {
        let r = r.borrow();
        (r.subs[0].len(), r.subs[1].len(), r.subs[2].len())
    })
}

/// A client is gone: drop all its subscriptions.
pub fn client_gone(id: u64, subs: &Subscriptions) {
    for kind in Kind::ALL {
        for ch in kind.list(subs) {
            registry_remove(kind, ch, id);
        }
    }
}

fn registry_add(kind: Kind, ch: &Bytes, id: u64) {
    REGISTRY.with(|r| {
        let mut r = r.borrow_mut();
        let list = r.subs[kind.index()].entry(ch.clone()).or_default();
        if !list.contains(&id) {
            list.push(id);
            r.dirty.insert((kind, ch.clone()));
        }
    })
}

fn registry_remove(kind: Kind, ch: &Bytes, id: u64) {
    REGISTRY.with(|r| {
        let mut r = r.borrow_mut();
        let map = &mut r.subs[kind.index()];
        if let Some(list) = map.get_mut(ch) {
            if let Some(i) = list.iter().position(|c| *c == id) {
                list.remove(i);
                if list.is_empty() {
                    map.remove(ch);
                }
                r.dirty.insert((kind, ch.clone()));
            }
        }
    })
}

fn reply(word: &'static str, ch: Option<Bytes>, count: i64) -> Frame {
    Frame::Push(vec![Frame::bulk(word), ch.map(Frame::Bulk).unwrap_or(Frame::NullBulk), Frame::Integer(count)])
}

fn subscribe_kind(ctx: &mut Ctx, args: &mut Args, kind: Kind) -> CmdResult {
    let id = ctx.session.id;
    let mut out = Vec::new();
    for ch in args.rest() {
        let list = kind.list_mut(&mut ctx.session.subs);
        if !list.contains(ch) {
            list.push(ch.clone());
            registry_add(kind, ch, id);
        }
        out.push(reply(kind.subscribe_word(), Some(ch.clone()), kind.count(&ctx.session.subs)));
    }
    Ok(Frame::Sequence(out))
}

fn unsubscribe_kind(ctx: &mut Ctx, args: &mut Args, kind: Kind) -> CmdResult {
    let id = ctx.session.id;
    let targets: Vec<Bytes> = if args.is_empty() { kind.list(&ctx.session.subs).clone() } else { args.rest().to_vec() };
    if targets.is_empty() {
        return Ok(Frame::Sequence(vec![reply(kind.unsubscribe_word(), None, kind.count(&ctx.session.subs))]));
    }
    let mut out = Vec::new();
    for ch in targets {
        let list = kind.list_mut(&mut ctx.session.subs);
        if let Some(i) = list.iter().position(|c| *c == ch) {
            list.remove(i);
            registry_remove(kind, &ch, id);
        }
        out.push(reply(kind.unsubscribe_word(), Some(ch), kind.count(&ctx.session.subs)));
    }
    Ok(Frame::Sequence(out))
}

fn subscribe(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    subscribe_kind(ctx, args, Kind::Channel)
}

fn unsubscribe(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    unsubscribe_kind(ctx, args, Kind::Channel)
}

fn psubscribe(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    subscribe_kind(ctx, args, Kind::Pattern)
}

fn punsubscribe(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    unsubscribe_kind(ctx, args, Kind::Pattern)
}

fn ssubscribe(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    subscribe_kind(ctx, args, Kind::Shard)
}

fn sunsubscribe(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    unsubscribe_kind(ctx, args, Kind::Shard)
}

fn publish(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let (ch, msg) = (args.next_bytes()?, args.next_bytes()?);
    Ok(Frame::Integer(publish_message(ctx.store(), ctx.session.origin, false, ch, msg)?))
}

fn spublish(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let (ch, msg) = (args.next_bytes()?, args.next_bytes()?);
    Ok(Frame::Integer(publish_message(ctx.store(), ctx.session.origin, true, ch, msg)?))
}

/// This process's worker index, or -1 in a SQL backend.
fn worker_index() -> i32 {
    crate::stats::with(|r| r.worker).map_or(-1, |w| w as i32)
}

/// Whether other processes may hold subscribers.
fn others_may_listen(origin: Origin) -> bool {
    origin == Origin::Sql || crate::gucs::workers() > 1
}

/// Publishes `msg` on `ch` (a shard channel when `shard`) and returns how
/// many clients receive it, on every worker. Used by PUBLISH, SPUBLISH,
/// `kv.publish()` and keyspace notifications.
pub fn publish_message(store: Store, origin: Origin, shard: bool, ch: Bytes, msg: Bytes) -> Result<i64, CmdError> {
    let job = CURRENT_JOB.with(|c| c.get());
    let mut receivers = deliver_local(job, shard, &ch, &msg);
    if others_may_listen(origin) {
        let kind = if shard { Kind::Shard } else { Kind::Channel };
        let remote: i64 = store
            .remote_subscriptions(worker_index(), kind.code(), &ch)?
            .into_iter()
            .filter(|(k, name, _)| *k != b'p' || pgkv_resp::glob::matches(name, &ch))
            .map(|(_, _, n)| n)
            .sum();
        if remote > 0 {
            notify(store, shard, &ch, &msg)?;
        }
        receivers += remote;
    }
    Ok(receivers)
}

/// Queues the message for this worker's subscribers; returns their number.
fn deliver_local(job: usize, shard: bool, ch: &Bytes, msg: &Bytes) -> i64 {
    REGISTRY.with(|r| {
        let mut r = r.borrow_mut();
        let mut out = Vec::new();
        if shard {
            for id in r.subs[Kind::Shard.index()].get(ch).into_iter().flatten() {
                out.push(Outgoing { job, client: *id, frame: Frame::Push(vec![Frame::bulk("smessage"), Frame::Bulk(ch.clone()), Frame::Bulk(msg.clone())]) });
            }
        } else {
            for id in r.subs[Kind::Channel.index()].get(ch).into_iter().flatten() {
                out.push(Outgoing { job, client: *id, frame: Frame::Push(vec![Frame::bulk("message"), Frame::Bulk(ch.clone()), Frame::Bulk(msg.clone())]) });
            }
            for (pattern, ids) in &r.subs[Kind::Pattern.index()] {
                if pgkv_resp::glob::matches(pattern, ch) {
                    for id in ids {
                        out.push(Outgoing {
                            job,
                            client: *id,
                            frame: Frame::Push(vec![Frame::bulk("pmessage"), Frame::Bulk(pattern.clone()), Frame::Bulk(ch.clone()), Frame::Bulk(msg.clone())]),
                        });
                    }
                }
            }
        }
        let n = out.len() as i64;
        r.outbox.extend(out);
        n
    })
}

/// Queues a NOTIFY carrying the message to the other processes.
/// Payload: `origin:kind:seq:channel:message` (base64), or
/// `origin:S:seq:id` with the message in kv.pubsub_spill.
fn notify(store: Store, shard: bool, ch: &[u8], msg: &[u8]) -> Result<(), CmdError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let origin = match worker_index() {
        -1 => "q".to_string(),
        w => w.to_string(),
    };
    let seq = SEQ.with(|s| {
        s.set(s.get() + 1);
        s.get()
    });
    let kind = if shard { 's' } else { 'c' };
    let encoded_len = (ch.len() + msg.len()) * 4 / 3 + 64;
    let payload = if encoded_len < PAYLOAD_MAX {
        format!("{origin}:{kind}:{seq}:{}:{}", b64.encode(ch), b64.encode(msg))
    } else {
        let id = store.spill(ch, msg)?;
        format!("{origin}:{}:{seq}:{id}", kind.to_ascii_uppercase())
    };
    crate::ffi::notify::notify(NOTIFY_CHANNEL, &payload);
    Ok(())
}

/// A message received through NOTIFY, decoded.
pub enum Received {
    Message { shard: bool, channel: Bytes, message: Bytes },
    Spilled { shard: bool, id: i64 },
}

/// Decodes a NOTIFY payload; `None` for this worker's own messages (already
/// delivered) and anything malformed.
pub fn decode(payload: &[u8], me: i32) -> Option<Received> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let text = std::str::from_utf8(payload).ok()?;
    let mut parts = text.splitn(5, ':');
    let origin = parts.next()?;
    if origin == me.to_string() {
        return None;
    }
    let kind = parts.next()?;
    let _seq = parts.next()?;
    match kind {
        "c" | "s" => {
            let channel = Bytes::from(b64.decode(parts.next()?).ok()?);
            let message = Bytes::from(b64.decode(parts.next()?).ok()?);
            Some(Received::Message { shard: kind == "s", channel, message })
        }
        "C" | "S" => Some(Received::Spilled { shard: kind == "S", id: parts.next()?.parse().ok()? }),
        _ => None,
    }
}

/// Delivers a message that arrived from another process to local clients.
pub fn deliver_remote(shard: bool, channel: &Bytes, message: &Bytes) {
    deliver_local(usize::MAX, shard, channel, message);
}

/// Local and remote channels of `kind` with their subscriber counts.
fn all_channels(ctx: &Ctx, kind: Kind) -> Result<HashMap<Bytes, i64>, CmdError> {
    let mut all: HashMap<Bytes, i64> = HashMap::new();
    REGISTRY.with(|r| {
        for (ch, ids) in &r.borrow().subs[kind.index()] {
            *all.entry(ch.clone()).or_default() += ids.len() as i64;
        }
    });
    if others_may_listen(ctx.session.origin) {
        for (ch, n) in ctx.store().remote_channels(worker_index(), kind.code())? {
            *all.entry(ch).or_default() += n;
        }
    }
    all.retain(|_, n| *n > 0);
    Ok(all)
}

fn channels_reply(ctx: &Ctx, args: &mut Args, kind: Kind) -> CmdResult {
    if args.remaining() > 1 {
        return Err(super::table::subcommand_syntax_error("pubsub", args.word(1).map_or(&[][..], |w| &w[..])));
    }
    let pattern = if args.is_empty() { None } else { Some(args.next_bytes()?) };
    let mut names: Vec<Bytes> = all_channels(ctx, kind)?
        .into_keys()
        .filter(|ch| pattern.as_ref().is_none_or(|p| pgkv_resp::glob::matches(p, ch)))
        .collect();
    names.sort();
    Ok(Frame::Array(names.into_iter().map(Frame::Bulk).collect()))
}

fn numsub_reply(ctx: &Ctx, args: &mut Args, kind: Kind) -> CmdResult {
    let all = all_channels(ctx, kind)?;
    let mut out = Vec::new();
    for ch in args.rest() {
        out.push(Frame::Bulk(ch.clone()));
        out.push(Frame::Integer(all.get(ch).copied().unwrap_or(0)));
    }
    // A flat array in both protocols, as Redis 7.0 sends it.
    Ok(Frame::Array(out))
}

fn pubsub_channels(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    channels_reply(ctx, args, Kind::Channel)
}

fn pubsub_shardchannels(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    channels_reply(ctx, args, Kind::Shard)
}

fn pubsub_numsub(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    numsub_reply(ctx, args, Kind::Channel)
}

fn pubsub_shardnumsub(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    numsub_reply(ctx, args, Kind::Shard)
}

/// The number of distinct patterns subscribed to, on every worker.
fn pubsub_numpat(ctx: &mut Ctx, _args: &mut Args) -> CmdResult {
    Ok(Frame::Integer(all_channels(ctx, Kind::Pattern)?.len() as i64))
}

/// Redis's RESP2 subscribed mode: which commands a subscribed client may
/// still send.
pub fn allowed_while_subscribed(name: &str) -> bool {
    matches!(name, "ping" | "subscribe" | "ssubscribe" | "unsubscribe" | "sunsubscribe" | "psubscribe" | "punsubscribe" | "quit" | "reset")
}
