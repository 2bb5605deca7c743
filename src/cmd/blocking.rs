//! What blocking commands share: the timeout argument, the decision to
//! park, and CLIENT UNBLOCK.
//!
//! A blocking command (BLPOP, BZPOPMIN, ...) first tries what its
//! non-blocking twin does. When every key is empty it calls [`block`]: a
//! RESP client outside EXEC and scripts gets `session.block` set and the
//! worker parks it (src/worker/blocked.rs) instead of replying; anyone
//! else gets the timeout reply at once, as Redis answers inside MULTI.
//! When a command makes a key it waits on ready, the worker runs the
//! command again for that key, in Redis's first-blocked-first-served order:
//! right after that command, in the same batch, as Redis serves blocked
//! clients after every command (`handleClientsBlockedOnKeys`); and after
//! the commit of another process's write.

use super::table::{local, Binding};
use super::{Args, Ctx};
use crate::error::{CmdError, CmdResult};
use crate::session::BlockRequest;
use bytes::Bytes;
use pgkv_resp::Frame;
use std::cell::RefCell;
use foldhash::{HashSet, HashSetExt};

pub const COMMANDS: &[Binding] = &[local("client|unblock", client_unblock)];

thread_local! {
    /// Ids of this worker's parked clients (kept by the worker).
    static PARKED: RefCell<HashSet<u64>> = RefCell::new(HashSet::new());
    /// CLIENT UNBLOCK requests: (client id, answer with an error).
    static UNBLOCK: RefCell<Vec<(u64, bool)>> = const { RefCell::new(Vec::new()) };
}

pub fn set_parked(id: u64, parked: bool) {
    PARKED.with(|p| {
        if parked {
            p.borrow_mut().insert(id);
        } else {
            p.borrow_mut().remove(&id);
        }
    });
}

/// CLIENT UNBLOCK ran for this client in the current batch: it is no
/// longer there to be served.
pub fn unblock_pending(id: u64) -> bool {
    UNBLOCK.with(|u| u.borrow().iter().any(|(c, _)| *c == id))
}

pub fn take_unblock_requests() -> Vec<(u64, bool)> {
    UNBLOCK.with(|u| std::mem::take(&mut *u.borrow_mut()))
}

/// Redis's `getTimeoutFromObjectOrReply` in seconds: a float, at
/// millisecond precision; 0 waits forever. Returns the deadline in unix ms
/// (0 for none).
pub fn parse_timeout(arg: &[u8], now_ms: i64) -> Result<i64, CmdError> {
    const NOT_FLOAT: &str = "ERR timeout is not a float or out of range";
    crate::ffi::parse_long_double(arg).ok_or(CmdError::Static(NOT_FLOAT))?;
    let seconds = crate::ffi::parse_range_double(arg).ok_or(CmdError::Static(NOT_FLOAT))?;
    let ms = seconds * 1000.0;
    // C's (long long) conversion of an out-of-range value is LLONG_MIN on
    // x86-64, which Redis then reports as negative.
    let ms = if ms.is_finite() && ms.abs() < 9.2e18 { ms as i64 } else { i64::MIN };
    if ms < 0 {
        return Err(CmdError::Static("ERR timeout is negative"));
    }
    if ms == 0 {
        return Ok(0);
    }
    if ms > i64::MAX - now_ms {
        return Err(CmdError::Static("ERR timeout is out of range"));
    }
    Ok(now_ms + ms)
}

/// Nothing to pop: park the client until one of `keys` is written (a
/// timeout answers a null array, as Redis does for every list and sorted
/// set command), or answer `not_blocking` now when this client may not
/// block (inside MULTI or a script).
pub fn block(ctx: &mut Ctx, keys: Vec<Bytes>, deadline_ms: i64, not_blocking: Frame) -> CmdResult {
    if !ctx.may_block() {
        return Ok(not_blocking);
    }
    let on_timeout = Frame::NullArray;
    ctx.session.block = Some(BlockRequest { keys, deadline_ms, on_timeout });
    // Never sent: the worker parks the client instead.
    Ok(Frame::NullArray)
}

/// A blocking command's look at a key it waits on. When the worker runs
/// a parked client's command again (`session.serving`), a key that holds
/// another type by now is passed over, as Redis serves a waiter only from
/// a key of its own type and leaves it blocked otherwise; the command's
/// first run reports it as WRONGTYPE.
pub fn waited<T>(ctx: &Ctx, found: Result<Option<T>, CmdError>) -> Result<Option<T>, CmdError> {
    match found {
        Err(e) if ctx.session.serving && e == CmdError::wrong_type() => Ok(None),
        other => other,
    }
}

/// What a blocking command waits for.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Waits {
    List,
    ZSet,
}

/// A parked command, as run again for one of its keys that became
/// ready: the same command waiting on that key alone (Redis serves a
/// client from the key that is ready, whatever the order of its keys), and
/// what it waits for. `None` for a command of another shape.
pub fn for_key(argv: &[Bytes], key: &Bytes) -> Option<(Vec<Bytes>, Waits)> {
    let name = String::from_utf8_lossy(argv.first()?).to_ascii_lowercase();
    let waits = if name.starts_with("bz") { Waits::ZSet } else { Waits::List };
    let argv = match name.as_str() {
        // NAME key [key ...] timeout
        "blpop" | "brpop" | "bzpopmin" | "bzpopmax" => vec![argv[0].clone(), key.clone(), argv.last()?.clone()],
        // NAME timeout numkeys key [key ...] rest
        "blmpop" | "bzmpop" => {
            let n = pgkv_resp::num::parse_i64(argv.get(2)?).filter(|n| *n > 0)? as usize;
            let rest = argv.get(3 + n..)?;
            let mut out = vec![argv[0].clone(), argv[1].clone(), Bytes::from_static(b"1"), key.clone()];
            out.extend_from_slice(rest);
            out
        }
        // one source key
        "blmove" | "brpoplpush" => argv.to_vec(),
        _ => return None,
    };
    Some((argv, waits))
}

/// `CLIENT UNBLOCK client-id [TIMEOUT|ERROR]`
fn client_unblock(_ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let id = args.next_i64()?;
    let error = match args.peek() {
        None => false,
        Some(a) if super::eq_ic(a, "timeout") => false,
        Some(a) if super::eq_ic(a, "error") => true,
        Some(_) => return Err(CmdError::Static("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")),
    };
    let parked = id >= 0 && PARKED.with(|p| p.borrow().contains(&(id as u64)));
    if parked {
        UNBLOCK.with(|u| u.borrow_mut().push((id as u64, error)));
    }
    Ok(Frame::Integer(parked as i64))
}
