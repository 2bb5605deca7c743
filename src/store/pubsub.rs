//! Pub/sub bookkeeping shared across processes: `kv.subscriptions` (who
//! listens where) and `kv.pubsub_spill` (payloads too big for NOTIFY).

use super::sql::{read, write, Sql, BYTEA, CHAR, INT4, INT8};
use super::{bytea, Store};
use crate::error::CmdError;
use bytes::Bytes;

static COUNT: Sql = read(
    "SELECT kind, channel, clients FROM kv.subscriptions WHERE worker <> $1 AND ((kind = $2 AND channel = $3) OR (kind = 'p' AND $2 = 'c'))",
    &[INT4, CHAR, BYTEA],
);
static LIST: Sql = read("SELECT channel, sum(clients)::int8 FROM kv.subscriptions WHERE worker <> $1 AND kind = $2 GROUP BY channel", &[INT4, CHAR]);
static UPSERT: Sql = write(
    "INSERT INTO kv.subscriptions (kind, channel, worker, clients) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (kind, channel, worker) DO UPDATE SET clients = EXCLUDED.clients",
    &[CHAR, BYTEA, INT4, INT4],
);
static REMOVE: Sql = write("DELETE FROM kv.subscriptions WHERE kind = $1 AND channel = $2 AND worker = $3", &[CHAR, BYTEA, INT4]);
static CLEAR: Sql = write("DELETE FROM kv.subscriptions WHERE worker = $1", &[INT4]);
static SPILL: Sql = write("INSERT INTO kv.pubsub_spill (channel, message) VALUES ($1, $2) RETURNING id", &[BYTEA, BYTEA]);
static UNSPILL: Sql = read("SELECT channel, message FROM kv.pubsub_spill WHERE id = $1", &[INT8]);
static SPILL_GC: Sql = write("DELETE FROM kv.pubsub_spill WHERE created < now() - interval '1 minute'", &[]);

/// A subscription kind as stored: 'c' channel, 'p' pattern, 's' shard channel.
pub type Kind = u8;

fn kind_datum(kind: Kind) -> pgrx::datum::DatumWithOid<'static> {
    (kind as i8).into()
}

impl<'a> Store<'a> {
    /// Subscriptions on other workers that a message on `channel` reaches:
    /// exact ones of `kind` plus, for plain channels, every pattern (the
    /// caller matches them). `worker` is the caller's own (-1 for SQL).
    pub fn remote_subscriptions(self, worker: i32, kind: Kind, channel: &[u8]) -> Result<Vec<(Kind, Bytes, i64)>, CmdError> {
        self.run(&COUNT, &[worker.into(), kind_datum(kind), bytea(channel)], |rows| {
            let mut out = Vec::new();
            for row in rows {
                let k = row.get::<i8>(1)?.unwrap_or(0) as u8;
                let ch = row.get::<Vec<u8>>(2)?.unwrap_or_default();
                out.push((k, Bytes::from(ch), row.get::<i32>(3)?.unwrap_or(0) as i64));
            }
            Ok(out)
        })
    }

    /// Every channel (or pattern) of `kind` other workers subscribe to, with
    /// their client counts.
    pub fn remote_channels(self, worker: i32, kind: Kind) -> Result<Vec<(Bytes, i64)>, CmdError> {
        self.run(&LIST, &[worker.into(), kind_datum(kind)], |rows| {
            let mut out = Vec::new();
            for row in rows {
                out.push((Bytes::from(row.get::<Vec<u8>>(1)?.unwrap_or_default()), row.get::<i64>(2)?.unwrap_or(0)));
            }
            Ok(out)
        })
    }

    /// Publishes this worker's client count for one channel (0 removes it).
    pub fn set_subscription(self, worker: i32, kind: Kind, channel: &[u8], clients: i32) -> Result<(), CmdError> {
        if clients > 0 {
            self.exec(&UPSERT, &[kind_datum(kind), bytea(channel), worker.into(), clients.into()])?;
        } else {
            self.exec(&REMOVE, &[kind_datum(kind), bytea(channel), worker.into()])?;
        }
        Ok(())
    }

    /// Forgets a worker's subscriptions (at its start: a crashed
    /// predecessor's connections are gone).
    pub fn clear_subscriptions(self, worker: i32) -> Result<(), CmdError> {
        self.exec(&CLEAR, &[worker.into()])?;
        Ok(())
    }

    pub fn spill(self, channel: &[u8], message: &[u8]) -> Result<i64, CmdError> {
        self.column::<i64>(&SPILL, &[bytea(channel), bytea(message)])?.first().copied().ok_or_else(|| CmdError::msg("ERR spill failed"))
    }

    pub fn unspill(self, id: i64) -> Result<Option<(Bytes, Bytes)>, CmdError> {
        self.run(&UNSPILL, &[id.into()], |rows| {
            let mut out = None;
            for row in rows {
                let ch = row.get::<Vec<u8>>(1)?.unwrap_or_default();
                let msg = row.get::<Vec<u8>>(2)?.unwrap_or_default();
                out = Some((Bytes::from(ch), Bytes::from(msg)));
            }
            Ok(out)
        })
    }

    pub fn spill_gc(self) -> Result<(), CmdError> {
        self.exec(&SPILL_GC, &[])?;
        Ok(())
    }
}
