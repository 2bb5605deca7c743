//! Keyspace notifications (Redis's notify.c).
//!
//! Commands report what they did with [`emit`]; the dispatcher publishes the
//! events after the command succeeds (`flush`), on
//! `__keyspace@<db>__:<key>` (message: the event) and
//! `__keyevent@<db>__:<event>` (message: the key), as the
//! `notify-keyspace-events` flags select. They travel like any PUBLISH:
//! delivered after the commit, from RESP clients and from SQL alike.
//! Expiry (lazy or active) emits `expired`.
//!
//! The flags live in kv.config. Each process caches them and reloads when
//! the shared config epoch moves (every committed CONFIG SET bumps it).

use super::pubsub;
use crate::error::CmdError;
use crate::session::Origin;
use crate::store::Store;
use bytes::Bytes;
use std::cell::{Cell, RefCell};

pub const KEYSPACE: u32 = 1 << 0;
pub const KEYEVENT: u32 = 1 << 1;
pub const GENERIC: u32 = 1 << 2;
pub const STRING: u32 = 1 << 3;
pub const LIST: u32 = 1 << 4;
pub const SET: u32 = 1 << 5;
pub const HASH: u32 = 1 << 6;
pub const ZSET: u32 = 1 << 7;
pub const EXPIRED: u32 = 1 << 8;
pub const EVICTED: u32 = 1 << 9;
pub const STREAM: u32 = 1 << 10;
pub const KEY_MISS: u32 = 1 << 11;
pub const MODULE: u32 = 1 << 13;
pub const NEW: u32 = 1 << 14;
const ALL: u32 = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// Redis's `keyspaceEventsStringToFlags`; `None` for an unknown character.
pub fn parse_flags(s: &[u8]) -> Option<u32> {
    let mut flags = 0;
    for c in s {
        flags |= match c {
            b'A' => ALL,
            b'g' => GENERIC,
            b'$' => STRING,
            b'l' => LIST,
            b's' => SET,
            b'h' => HASH,
            b'z' => ZSET,
            b'x' => EXPIRED,
            b'e' => EVICTED,
            b'K' => KEYSPACE,
            b'E' => KEYEVENT,
            b't' => STREAM,
            b'm' => KEY_MISS,
            b'd' => MODULE,
            b'n' => NEW,
            _ => return None,
        };
    }
    Some(flags)
}

/// Redis's `keyspaceEventsFlagsToString`: the canonical spelling CONFIG GET shows.
pub fn flags_to_string(flags: u32) -> String {
    let mut s = String::new();
    if flags & ALL == ALL {
        s.push('A');
    } else {
        for (bit, c) in [
            (GENERIC, 'g'),
            (STRING, '$'),
            (LIST, 'l'),
            (SET, 's'),
            (HASH, 'h'),
            (ZSET, 'z'),
            (EXPIRED, 'x'),
            (EVICTED, 'e'),
            (STREAM, 't'),
            (MODULE, 'd'),
            (NEW, 'n'),
        ] {
            if flags & bit != 0 {
                s.push(c);
            }
        }
    }
    for (bit, c) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')] {
        if flags & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// The flags as kept in kv.config: `flags_to_string`, which is what
/// CONFIG GET shows, plus `n` where that spelling drops it (after `A`, as
/// Redis's does) while the flag is on.
pub fn flags_to_stored(flags: u32) -> String {
    let mut s = flags_to_string(flags);
    if flags & NEW != 0 && !s.contains('n') {
        s.push('n');
    }
    s
}

struct Event {
    class: u32,
    event: &'static str,
    db: i16,
    key: Bytes,
}

thread_local! {
    static PENDING: RefCell<Vec<Event>> = const { RefCell::new(Vec::new()) };
    /// Collections the command emptied: their `del` comes after the
    /// command's own events, as in Redis.
    static EMPTIED: RefCell<Vec<Event>> = const { RefCell::new(Vec::new()) };
    /// (config epoch, flags) as last loaded; epoch u64::MAX means unknown.
    static CACHED: Cell<(u64, u32)> = const { Cell::new((u64::MAX, 0)) };
}

/// Whether events of `class` might be wanted; false only when the cached
/// flags are current and exclude it (the common case: notifications off).
pub fn maybe_wanted(class: u32) -> bool {
    let (epoch, flags) = CACHED.with(|c| c.get());
    epoch != crate::shared::config_epoch() || (flags & class != 0 && flags & (KEYSPACE | KEYEVENT) != 0)
}

/// A command did `event` to `key`. Every event also touches the key for
/// WATCH and blocked clients (`shared::touch`), whether or not
/// notifications are on: Redis calls `signalModifiedKey` exactly where it
/// notifies, so a write command that changes nothing (SADD of a member the
/// set has, DEL of a missing key, SET NX of an existing one) touches
/// nothing, as in Redis.
pub fn emit(class: u32, event: &'static str, db: i16, key: &[u8]) {
    crate::shared::touch(db, key);
    queue(class, event, db, key);
}

/// `emit` for the destination of a STORE command (SORT ... STORE,
/// ZUNIONSTORE and the like): one that `replaced` an existing key whole
/// makes no blocked client ready (`shared::touch_overwrite`).
pub fn emit_stored(class: u32, event: &'static str, db: i16, key: &[u8], replaced: bool) {
    if replaced {
        crate::shared::touch_overwrite(db, key);
    } else {
        crate::shared::touch(db, key);
    }
    queue(class, event, db, key);
}

/// Queues the notification of `event` when its class may be wanted.
fn queue(class: u32, event: &'static str, db: i16, key: &[u8]) {
    if maybe_wanted(class) {
        PENDING.with(|p| p.borrow_mut().push(Event { class, event, db, key: Bytes::copy_from_slice(key) }));
    }
}

/// A command's pop or removal emptied the collection at `key`.
pub fn emptied(db: i16, key: &[u8]) {
    crate::shared::touch(db, key);
    if maybe_wanted(GENERIC) {
        EMPTIED.with(|p| p.borrow_mut().push(Event { class: GENERIC, event: "del", db, key: Bytes::copy_from_slice(key) }));
    }
}

/// CONFIG SET changed the flags: reload them before the next event.
pub fn invalidate() {
    CACHED.with(|c| c.set((u64::MAX, 0)));
}

/// Drops events of a command that failed.
pub fn discard() {
    PENDING.with(|p| p.borrow_mut().clear());
    EMPTIED.with(|p| p.borrow_mut().clear());
}

fn current_flags(store: Store) -> Result<u32, CmdError> {
    let epoch = crate::shared::config_epoch();
    let (cached_epoch, flags) = CACHED.with(|c| c.get());
    if cached_epoch == epoch {
        return Ok(flags);
    }
    let value = store.config_all()?.into_iter().find(|(n, _)| n == "notify-keyspace-events").map(|(_, v)| v).unwrap_or_default();
    let flags = parse_flags(value.as_bytes()).unwrap_or(0);
    CACHED.with(|c| c.set((epoch, flags)));
    Ok(flags)
}

/// Publishes the events the last command emitted.
pub fn flush(store: Store, origin: Origin) -> Result<(), CmdError> {
    let mut events = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
    events.extend(EMPTIED.with(|p| std::mem::take(&mut *p.borrow_mut())));
    if events.is_empty() {
        return Ok(());
    }
    let flags = current_flags(store)?;
    for e in events {
        if flags & e.class == 0 {
            continue;
        }
        if flags & KEYSPACE != 0 {
            let mut ch = format!("__keyspace@{}__:", e.db).into_bytes();
            ch.extend_from_slice(&e.key);
            pubsub::publish_message(store, origin, false, Bytes::from(ch), Bytes::from_static(e.event.as_bytes()))?;
        }
        if flags & KEYEVENT != 0 {
            let ch = format!("__keyevent@{}__:{}", e.db, e.event);
            pubsub::publish_message(store, origin, false, Bytes::from(ch), e.key.clone())?;
        }
    }
    Ok(())
}
