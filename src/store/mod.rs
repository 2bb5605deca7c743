//! The store layer: the only code that runs SQL. Every statement is a plan
//! prepared once per process and kept across transactions; every value is a
//! bound parameter.
//!
//! Type checks and "expired means absent" are decided in exactly one place,
//! [`Store::lookup`], which every command and every SQL function reaches.

mod plans;

use crate::error::CmdError;
use bytes::Bytes;
use pgrx::datum::DatumWithOid;
use pgrx::spi::SpiClient;
use plans::{with_plans, Plan};

/// The types a key can hold; the code is the `kv.keys.type` column ("char").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    String,
    Hash,
    List,
    Set,
    ZSet,
}

impl KeyType {
    pub fn code(self) -> i8 {
        (match self {
            KeyType::String => b's',
            KeyType::Hash => b'h',
            KeyType::List => b'l',
            KeyType::Set => b't',
            KeyType::ZSet => b'z',
        }) as i8
    }

    fn from_code(c: i8) -> Result<KeyType, CmdError> {
        Ok(match c as u8 {
            b's' => KeyType::String,
            b'h' => KeyType::Hash,
            b'l' => KeyType::List,
            b't' => KeyType::Set,
            b'z' => KeyType::ZSet,
            other => return Err(CmdError::Postgres(format!("kv.keys has an unknown type code {:?}", other as char))),
        })
    }
}

/// A live key: what `lookup` found, with expiry already applied.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: i64,
    pub ktype: KeyType,
    /// Unix milliseconds, or `None` for a key without TTL.
    pub expire_at: Option<i64>,
    /// The payload, for strings, when the lookup asked for it.
    pub value: Option<Vec<u8>>,
}

/// Whether a lookup also fetches a string's payload. EXISTS and TYPE don't
/// need it, and strings can be 512 MB.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Fetch {
    Meta,
    Value,
}

#[derive(Clone, Copy)]
pub struct Store<'a> {
    spi: &'a SpiClient<'a>,
}

fn bytea(b: &[u8]) -> DatumWithOid<'_> {
    DatumWithOid::from(b)
}

impl<'a> Store<'a> {
    /// A store over an SPI connection that is open for the whole batch (worker)
    /// or the whole function call (SQL).
    pub fn new(spi: &'a SpiClient<'a>) -> Store<'a> {
        Store { spi }
    }

    /// The one lookup every command goes through. An expired key is deleted
    /// here (lazy expiry) and reported as absent.
    pub fn lookup(self, db: i16, key: &[u8], now_ms: i64, fetch: Fetch) -> Result<Option<Entry>, CmdError> {
        let plan = if fetch == Fetch::Value { Plan::LookupValue } else { Plan::LookupMeta };
        let found = with_plans(self.spi, |p| -> Result<Option<Entry>, CmdError> {
            let rows = self.spi.select(p.get(plan), Some(1), &[db.into(), bytea(key)])?;
            let Some(row) = rows.into_iter().next() else { return Ok(None) };
            let id: i64 = row.get(1)?.unwrap_or_default();
            let code: i8 = row.get(2)?.unwrap_or_default();
            let expire_at: Option<i64> = row.get(3)?;
            let value: Option<Vec<u8>> = if fetch == Fetch::Value { row.get(4)? } else { None };
            Ok(Some(Entry { id, ktype: KeyType::from_code(code)?, expire_at, value }))
        })?;
        match found {
            Some(e) if e.expire_at.is_some_and(|t| t <= now_ms) => {
                // A read-only transaction (a SQL caller's, or a standby's)
                // cannot delete; the key is still reported absent and the
                // active cycle removes it later.
                // SAFETY: a plain global of the running backend.
                if unsafe { pgrx::pg_sys::XactReadOnly } {
                    return Ok(None);
                }
                with_plans(self.spi, |p| self.spi.select(p.get(Plan::DeleteIfExpired), None, &[db.into(), bytea(key), now_ms.into()]).map(|_| ()))?;
                Ok(None)
            }
            other => Ok(other),
        }
    }

    /// `lookup` that answers WRONGTYPE unless the key is absent or of `want`.
    pub fn lookup_typed(self, db: i16, key: &[u8], now_ms: i64, want: KeyType, fetch: Fetch) -> Result<Option<Entry>, CmdError> {
        match self.lookup(db, key, now_ms, fetch)? {
            Some(e) if e.ktype != want => Err(CmdError::wrong_type()),
            other => Ok(other),
        }
    }

    /// Creates or overwrites `key` as a string. Overwriting a key of another
    /// type gives it a new id, so its old members become orphans that the
    /// background sweep frees (the write itself stays O(1)).
    pub fn set_string(self, db: i16, key: &[u8], value: &[u8], expire_at: Option<i64>) -> Result<(), CmdError> {
        with_plans(self.spi, |p| {
            self.spi.select(p.get(Plan::UpsertString), None, &[db.into(), bytea(key), expire_at.into(), bytea(value)]).map(|_| ())
        })?;
        Ok(())
    }

    /// Deletes `keys`, returning how many live (unexpired) keys were removed.
    /// Duplicates count once, as in Redis.
    pub fn delete(self, db: i16, keys: &[Bytes], now_ms: i64) -> Result<i64, CmdError> {
        let keys: Vec<&[u8]> = keys.iter().map(|k| k.as_ref()).collect();
        let n = with_plans(self.spi, |p| -> Result<i64, CmdError> {
            let rows = self.spi.select(p.get(Plan::DeleteKeys), None, &[db.into(), keys.into(), now_ms.into()])?;
            let mut live = 0;
            for row in rows {
                if row.get::<bool>(1)?.unwrap_or(false) {
                    live += 1;
                }
            }
            Ok(live)
        })?;
        Ok(n)
    }

    /// One bounded step of active expiry: removes up to `limit` expired keys
    /// from any database and returns how many it removed.
    pub fn expire_step(self, now_ms: i64, limit: i64) -> Result<i64, CmdError> {
        let n = with_plans(self.spi, |p| self.spi.select(p.get(Plan::ExpireStep), None, &[now_ms.into(), limit.into()]).map(|t| t.len() as i64))?;
        Ok(n)
    }
}
