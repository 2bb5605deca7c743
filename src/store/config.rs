//! CONFIG SET values (`kv.config`).

use super::sql::{read, write, Sql};
use super::Store;
use crate::error::CmdError;
use pgrx::pg_sys::{self, PgOid};

const TEXT: PgOid = PgOid::BuiltIn(pg_sys::BuiltinOid::TEXTOID);
static ALL: Sql = read("SELECT name, value FROM kv.config", &[]);
// Two EXECs watching the same key serialize on this lock, held until
// commit, so the second sees the first's touch (see `cmd::multi`).
static WATCH_LOCK: Sql = write("SELECT pg_advisory_xact_lock(1885828726, $1)", &[super::sql::INT4]);
static SET: Sql = write(
    "INSERT INTO kv.config (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
    &[TEXT, TEXT],
);

impl<'a> Store<'a> {
    /// Every parameter CONFIG SET has changed: (name, value).
    pub fn config_all(self) -> Result<Vec<(String, String)>, CmdError> {
        self.run(&ALL, &[], |rows| {
            let mut out = Vec::new();
            for row in rows {
                out.push((row.get::<String>(1)?.unwrap_or_default(), row.get::<String>(2)?.unwrap_or_default()));
            }
            Ok(out)
        })
    }

    /// Locks WATCH slots for the rest of the transaction, in slot order.
    pub fn lock_watch_slots(self, mut slots: Vec<i32>) -> Result<(), CmdError> {
        slots.sort_unstable();
        slots.dedup();
        for s in slots {
            self.exec(&WATCH_LOCK, &[s.into()])?;
        }
        Ok(())
    }

    pub fn config_set(self, name: &str, value: &str) -> Result<(), CmdError> {
        self.exec(&SET, &[name.into(), value.into()])?;
        Ok(())
    }
}
