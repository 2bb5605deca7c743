//! Statements, each planned once per process and kept across transactions
//! (`SPI_keepplan`). Postgres revalidates a kept plan by itself when the
//! tables it uses change. Every value is a bound parameter.

use crate::error::CmdError;
use pgrx::datum::DatumWithOid;
use pgrx::pg_sys::{self, PgOid};
use pgrx::FromDatum;
use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiTupleTable};
use std::cell::RefCell;
use foldhash::{HashMap, HashMapExt};

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
pub const TID_ARRAY: PgOid = PgOid::BuiltIn(pg_sys::BuiltinOid::TIDARRAYOID);
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
    // Any statement may change rows the batch locked (`direct::write_back`).
    super::direct::forget_locked_versions();
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

/// The first column, bytea, of every non-null row of the statement `run`
/// just executed, copied out. What `row.get::<Vec<u8>>(1)` gives, read
/// straight from SPI's result: pgrx's per-row accessors (a descriptor
/// entry per column, a type check and a memory-context switch per value)
/// cost more than the copy itself, a fifth of the worker's time under
/// LRANGE of 100 elements.
///
/// Only for use inside the closure given to `run`, while SPI_tuptable is
/// that statement's result (as for the functions below).
pub fn first_bytea_column() -> Result<Vec<Vec<u8>>, CmdError> {
    let Some(t) = SpiRows::current(&[pg_sys::BYTEAOID])? else { return Ok(Vec::new()) };
    let mut out = Vec::with_capacity(t.len());
    for i in 0..t.len() {
        if let Some(v) = t.bytea(i, 1) {
            out.push(v);
        }
    }
    Ok(out)
}

/// (bytea, bytea) rows, as `first_bytea_column` reads them (HGETALL): a
/// NULL reads as empty.
pub fn bytea_pairs() -> Result<Vec<(Vec<u8>, Vec<u8>)>, CmdError> {
    let Some(t) = SpiRows::current(&[pg_sys::BYTEAOID, pg_sys::BYTEAOID])? else { return Ok(Vec::new()) };
    Ok((0..t.len()).map(|i| (t.bytea(i, 1).unwrap_or_default(), t.bytea(i, 2).unwrap_or_default())).collect())
}

/// (bytea, float8) rows, as `first_bytea_column` reads them (a sorted
/// set's members with their scores): a NULL reads as empty or 0.
pub fn bytea_float8_pairs() -> Result<Vec<(Vec<u8>, f64)>, CmdError> {
    let Some(t) = SpiRows::current(&[pg_sys::BYTEAOID, pg_sys::FLOAT8OID])? else { return Ok(Vec::new()) };
    Ok((0..t.len()).map(|i| (t.bytea(i, 1).unwrap_or_default(), t.float8(i, 2).unwrap_or_default())).collect())
}

/// The result of the statement just executed, its column types checked.
struct SpiRows {
    table: *mut pg_sys::SPITupleTable,
}

impl SpiRows {
    /// SPI's current result, if any, once its leading columns are checked
    /// to have `types`.
    fn current(types: &[pg_sys::Oid]) -> Result<Option<SpiRows>, CmdError> {
        // SAFETY: SPI_tuptable is the result of the statement just executed
        // on the open SPI connection (see `first_bytea_column`).
        unsafe {
            let table = pg_sys::SPI_tuptable;
            if table.is_null() {
                return Ok(None);
            }
            let desc = (*table).tupdesc;
            for (i, want) in types.iter().enumerate() {
                if pg_sys::SPI_gettypeid(desc, i as i32 + 1) != *want {
                    return Err(CmdError::Postgres(format!("pgkv: unexpected type of result column {}", i + 1)));
                }
            }
            Ok(Some(SpiRows { table }))
        }
    }

    fn len(&self) -> usize {
        // SAFETY: `table` is SPI's current result (`current`).
        unsafe { (*self.table).numvals as usize }
    }

    /// The raw value of column `col` (1-based) of row `row`, or `None` for
    /// NULL.
    fn datum(&self, row: usize, col: i32) -> Option<pg_sys::Datum> {
        // SAFETY: `row` < `len()`, and `col` is one of the columns whose type
        // `current` checked.
        unsafe {
            let tuple = *(*self.table).vals.add(row);
            let mut isnull = false;
            let datum = pg_sys::SPI_getbinval(tuple, (*self.table).tupdesc, col, &mut isnull);
            (!isnull).then_some(datum)
        }
    }

    /// A bytea column, copied out.
    fn bytea(&self, row: usize, col: i32) -> Option<Vec<u8>> {
        let datum = self.datum(row, col)?;
        // SAFETY: the column is bytea (`current`); a toasted or compressed
        // value is detoasted into a copy, freed after the copy out.
        unsafe {
            let raw = datum.cast_mut_ptr::<pg_sys::varlena>();
            let v = pg_sys::pg_detoast_datum_packed(raw);
            let bytes = std::slice::from_raw_parts(pgrx::varlena::vardata_any(v) as *const u8, pgrx::varlena::varsize_any_exhdr(v));
            let out = bytes.to_vec();
            if v != raw {
                pg_sys::pfree(v.cast());
            }
            Some(out)
        }
    }

    /// A float8 column.
    fn float8(&self, row: usize, col: i32) -> Option<f64> {
        let datum = self.datum(row, col)?;
        // SAFETY: the column is float8 (`current`), passed by value on every
        // 64-bit platform Postgres 16 supports.
        unsafe { f64::from_datum(datum, false) }
    }
}
