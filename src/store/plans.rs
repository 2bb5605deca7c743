//! Prepared statements, planned once per process and kept across
//! transactions (`SPI_keepplan`). Postgres revalidates a kept plan by itself
//! when the tables it uses change.

use crate::error::CmdError;
use pgrx::pg_sys::{self, PgOid};
use pgrx::spi::{OwnedPreparedStatement, SpiClient};
use std::cell::RefCell;

#[derive(Clone, Copy)]
pub enum Plan {
    LookupMeta,
    LookupValue,
    DeleteIfExpired,
    UpsertString,
    DeleteKeys,
    ExpireStep,
}

const INT2: PgOid = PgOid::BuiltIn(pg_sys::BuiltinOid::INT2OID);
const INT8: PgOid = PgOid::BuiltIn(pg_sys::BuiltinOid::INT8OID);
const BYTEA: PgOid = PgOid::BuiltIn(pg_sys::BuiltinOid::BYTEAOID);
const BYTEA_ARRAY: PgOid = PgOid::BuiltIn(pg_sys::BuiltinOid::BYTEAARRAYOID);

/// (plan, writes?, SQL, parameter types)
const PLANS: &[(Plan, bool, &str, &[PgOid])] = &[
    (Plan::LookupMeta, false, "SELECT id, type, expire_at FROM kv.keys WHERE db = $1 AND key = $2", &[INT2, BYTEA]),
    (Plan::LookupValue, false, "SELECT id, type, expire_at, value FROM kv.keys WHERE db = $1 AND key = $2", &[INT2, BYTEA]),
    (Plan::DeleteIfExpired, true, "DELETE FROM kv.keys WHERE db = $1 AND key = $2 AND expire_at <= $3", &[INT2, BYTEA, INT8]),
    (
        Plan::UpsertString,
        true,
        "INSERT INTO kv.keys AS k (db, key, type, expire_at, value) VALUES ($1, $2, 's', $3, $4) \
         ON CONFLICT (db, key) DO UPDATE SET type = 's', expire_at = EXCLUDED.expire_at, value = EXCLUDED.value, \
         id = CASE WHEN k.type = 's' THEN k.id ELSE nextval('kv.key_ids') END",
        &[INT2, BYTEA, INT8, BYTEA],
    ),
    (
        Plan::DeleteKeys,
        true,
        "DELETE FROM kv.keys WHERE db = $1 AND key = ANY ($2) RETURNING expire_at IS NULL OR expire_at > $3",
        &[INT2, BYTEA_ARRAY, INT8],
    ),
    (
        Plan::ExpireStep,
        true,
        "DELETE FROM kv.keys WHERE (db, key) IN \
         (SELECT db, key FROM kv.keys WHERE expire_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING 1",
        &[INT8, INT8],
    ),
];

pub struct Plans(Vec<OwnedPreparedStatement>);

impl Plans {
    pub fn get(&self, plan: Plan) -> &OwnedPreparedStatement {
        &self.0[plan as usize]
    }
}

thread_local! {
    static CACHE: RefCell<Option<Plans>> = const { RefCell::new(None) };
}

/// Runs `f` with the process's kept plans, preparing them on first use.
pub fn with_plans<R, E>(spi: &SpiClient<'_>, f: impl FnOnce(&Plans) -> Result<R, E>) -> Result<R, CmdError>
where
    CmdError: From<E>,
{
    CACHE.with(|cache| {
        if cache.borrow().is_none() {
            let mut kept = Vec::with_capacity(PLANS.len());
            for (i, (plan, writes, sql, types)) in PLANS.iter().enumerate() {
                debug_assert_eq!(*plan as usize, i, "PLANS is in enum order");
                let prepared = if *writes { spi.prepare_mut(*sql, types)? } else { spi.prepare(*sql, types)? };
                kept.push(prepared.keep());
            }
            *cache.borrow_mut() = Some(Plans(kept));
        }
        let cache = cache.borrow();
        Ok(f(cache.as_ref().expect("prepared above"))?)
    })
}
