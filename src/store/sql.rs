//! Statements, each planned once per process and kept across transactions
//! (`SPI_keepplan`). Postgres revalidates a kept plan by itself when the
//! tables it uses change. Every value is a bound parameter.

use crate::error::CmdError;
use pgrx::datum::DatumWithOid;
use pgrx::pg_sys::{self, PgOid};
use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiTupleTable};
use std::cell::RefCell;
use std::collections::HashMap;

/// One statement: its text, parameter types, and whether it writes (a
/// read-only plan runs with the transaction's snapshot, a writing one with a
/// fresh snapshot per statement, seeing the batch's earlier writes).
pub struct Sql {
    pub text: &'static str,
    pub types: &'static [PgOid],
    pub writes: bool,
}

pub const INT2: PgOid = PgOid::BuiltIn(pg_sys::BuiltinOid::INT2OID);
pub const INT4: PgOid = PgOid::BuiltIn(pg_sys::BuiltinOid::INT4OID);
pub const INT8: PgOid = PgOid::BuiltIn(pg_sys::BuiltinOid::INT8OID);
pub const FLOAT8: PgOid = PgOid::BuiltIn(pg_sys::BuiltinOid::FLOAT8OID);
pub const BYTEA: PgOid = PgOid::BuiltIn(pg_sys::BuiltinOid::BYTEAOID);
pub const BYTEA_ARRAY: PgOid = PgOid::BuiltIn(pg_sys::BuiltinOid::BYTEAARRAYOID);
pub const INT2_ARRAY: PgOid = PgOid::BuiltIn(pg_sys::BuiltinOid::INT2ARRAYOID);
pub const INT8_ARRAY: PgOid = PgOid::BuiltIn(pg_sys::BuiltinOid::INT8ARRAYOID);
pub const FLOAT8_ARRAY: PgOid = PgOid::BuiltIn(pg_sys::BuiltinOid::FLOAT8ARRAYOID);
pub const CHAR: PgOid = PgOid::BuiltIn(pg_sys::BuiltinOid::CHAROID);

pub const fn read(text: &'static str, types: &'static [PgOid]) -> Sql {
    Sql { text, types, writes: false }
}

pub const fn write(text: &'static str, types: &'static [PgOid]) -> Sql {
    Sql { text, types, writes: true }
}

thread_local! {
    static KEPT: RefCell<HashMap<usize, OwnedPreparedStatement>> = RefCell::new(HashMap::new());
}

/// Runs `sql` with `args` and hands its rows to `f` (which must copy out
/// what it keeps: the rows live in SPI memory).
pub fn run<'a, R>(
    spi: &'a SpiClient<'a>,
    sql: &'static Sql,
    args: &[DatumWithOid<'_>],
    f: impl FnOnce(SpiTupleTable<'a>) -> Result<R, CmdError>,
) -> Result<R, CmdError> {
    let key = sql as *const Sql as usize;
    KEPT.with(|kept| {
        if !kept.borrow().contains_key(&key) {
            let prepared = if sql.writes { spi.prepare_mut(sql.text, sql.types)? } else { spi.prepare(sql.text, sql.types)? };
            kept.borrow_mut().insert(key, prepared.keep());
        }
        let kept = kept.borrow();
        let plan = kept.get(&key).expect("prepared above");
        let table = spi.select(plan, None, args)?;
        f(table)
    })
}
