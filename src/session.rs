//! Per-client state that commands read and change: the selected database, the
//! protocol, the name, authentication. A RESP connection owns one for its
//! lifetime; a SQL call builds a fresh one (see `sql_api`).

use bytes::Bytes;
use pgkv_resp::Protocol;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A client of the worker's RESP port.
    Resp,
    /// A `kv.*` SQL function inside the caller's transaction.
    Sql,
}

#[derive(Clone, Debug)]
pub struct Session {
    pub id: u64,
    pub db: i16,
    pub proto: Protocol,
    pub name: Option<Bytes>,
    pub authenticated: bool,
    /// The PostgreSQL role this client logged in as (`pgkv.auth =
    /// 'postgres'`); its commands run as that role. `None`: the worker's.
    pub role: Option<pgrx::pg_sys::Oid>,
    pub origin: Origin,
    /// Set by QUIT: send the reply, then close.
    pub close_after_reply: bool,
    /// Pub/sub subscriptions, in the order they were made.
    pub subs: Subscriptions,
    /// Commands queued since MULTI; `None` outside a transaction.
    pub multi: Option<Multi>,
    /// Keys under WATCH, with what they looked like then.
    pub watched: Vec<Watched>,
    /// Set by EXEC while its queued commands run: nothing may block.
    pub in_exec: bool,
    /// Set while a script runs: nothing may block.
    pub in_script: bool,
    /// Set by a blocking command that found nothing to pop: the worker parks
    /// the client instead of replying.
    pub block: Option<BlockRequest>,
    /// Set while the worker runs a parked client's blocking command again
    /// because a key it waits on was written: a key that now holds another
    /// type is passed over, not an error (`cmd::blocking::waited`).
    pub serving: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Subscriptions {
    pub channels: Vec<Bytes>,
    pub patterns: Vec<Bytes>,
    pub shard: Vec<Bytes>,
}

impl Subscriptions {
    /// Redis's CLIENT_PUBSUB: any subscription at all.
    pub fn any(&self) -> bool {
        !(self.channels.is_empty() && self.patterns.is_empty() && self.shard.is_empty())
    }
}

#[derive(Clone, Debug, Default)]
pub struct Multi {
    pub queued: Vec<Vec<Bytes>>,
    /// A command failed to queue: EXEC answers EXECABORT.
    pub dirty: bool,
}

#[derive(Clone, Debug)]
pub struct Watched {
    pub db: i16,
    pub key: Bytes,
    pub stamp: crate::shared::Stamp,
    /// When the key would expire, if it existed with a TTL at WATCH time.
    pub expire_at: Option<i64>,
}

/// What a blocking command waits for.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockRequest {
    pub keys: Vec<Bytes>,
    /// Unix ms; 0 waits forever.
    pub deadline_ms: i64,
    /// The reply when the timeout passes (a null of the command's kind).
    pub on_timeout: pgkv_resp::Frame,
}

impl Session {
    pub fn new(id: u64, origin: Origin, authenticated: bool) -> Session {
        Session {
            id,
            db: 0,
            proto: Protocol::Resp2,
            name: None,
            authenticated,
            role: None,
            origin,
            close_after_reply: false,
            subs: Subscriptions::default(),
            multi: None,
            watched: Vec::new(),
            in_exec: false,
            in_script: false,
            block: None,
            serving: false,
        }
    }
}
