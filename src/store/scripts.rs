//! The script cache (`kv.scripts`) and function libraries
//! (`kv.libraries`), shared by every worker and kept across restarts.
//! `kv.library_version` changes with every library change, so a worker
//! knows when its loaded libraries are stale.

use super::sql::{read, write, Sql, BYTEA};
use super::{bytea, Store};
use crate::error::CmdError;
use pgrx::datum::DatumWithOid;
use pgrx::pg_sys::{self, PgOid};

const TEXT: PgOid = PgOid::BuiltIn(pg_sys::BuiltinOid::TEXTOID);
const TEXT_ARRAY: PgOid = PgOid::BuiltIn(pg_sys::BuiltinOid::TEXTARRAYOID);

static SCRIPT_BODY: Sql = read("SELECT body FROM kv.scripts WHERE sha = $1", &[TEXT]);
static SCRIPT_KNOWN: Sql = read("SELECT 1 FROM kv.scripts WHERE sha = $1", &[TEXT]);
static SCRIPTS_KNOWN: Sql = read("SELECT sha FROM kv.scripts WHERE sha = ANY ($1)", &[TEXT_ARRAY]);
static SCRIPT_SAVE: Sql = write("INSERT INTO kv.scripts (sha, body) VALUES ($1, $2) ON CONFLICT DO NOTHING", &[TEXT, BYTEA]);
static SCRIPT_FLUSH: Sql = write("DELETE FROM kv.scripts", &[]);
static LIBRARY_VERSION: Sql = read("SELECT version FROM kv.library_version", &[]);
static LIBRARY_LOCK: Sql = write("SELECT version FROM kv.library_version FOR UPDATE", &[]);
// A transaction id never repeats, and one that rolls back is never seen.
static LIBRARY_BUMP: Sql = write("UPDATE kv.library_version SET version = txid_current() RETURNING version", &[]);
static LIBRARIES: Sql = read("SELECT name, code FROM kv.libraries ORDER BY name", &[]);
static LIBRARY_PUT: Sql = write(
    "INSERT INTO kv.libraries (name, code) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET code = EXCLUDED.code",
    &[TEXT, BYTEA],
);
static LIBRARY_DELETE: Sql = write("DELETE FROM kv.libraries WHERE name = $1", &[TEXT]);
static LIBRARY_FLUSH: Sql = write("DELETE FROM kv.libraries", &[]);

impl<'a> Store<'a> {
    /// A cached script's body (shas are stored lowercase).
    pub fn script_body(self, sha: &str) -> Result<Option<Vec<u8>>, CmdError> {
        Ok(self.bytes_column(&SCRIPT_BODY, &[sha.into()])?.into_iter().next())
    }

    pub fn script_known(self, sha: &str) -> Result<bool, CmdError> {
        Ok(self.exec(&SCRIPT_KNOWN, &[sha.into()])? > 0)
    }

    /// Which of `shas` are cached.
    pub fn scripts_known(self, shas: &[String]) -> Result<Vec<String>, CmdError> {
        self.column::<String>(&SCRIPTS_KNOWN, &[DatumWithOid::from(shas.to_vec())])
    }

    pub fn script_save(self, sha: &str, body: &[u8]) -> Result<(), CmdError> {
        self.exec(&SCRIPT_SAVE, &[sha.into(), bytea(body)])?;
        Ok(())
    }

    pub fn script_flush(self) -> Result<(), CmdError> {
        self.exec(&SCRIPT_FLUSH, &[])?;
        Ok(())
    }

    /// The libraries' version; with `lock`, held until commit so library
    /// changes from several workers apply one at a time.
    pub fn library_version(self, lock: bool) -> Result<i64, CmdError> {
        let v = self.column::<i64>(if lock { &LIBRARY_LOCK } else { &LIBRARY_VERSION }, &[])?;
        Ok(v.into_iter().next().unwrap_or_default())
    }

    /// Marks the libraries changed; returns the new version.
    pub fn library_bump(self) -> Result<i64, CmdError> {
        Ok(self.column::<i64>(&LIBRARY_BUMP, &[])?.into_iter().next().unwrap_or_default())
    }

    /// Every library: (name, code).
    pub fn libraries(self) -> Result<Vec<(String, Vec<u8>)>, CmdError> {
        self.run(&LIBRARIES, &[], |rows| {
            let mut out = Vec::new();
            for row in rows {
                out.push((row.get::<String>(1)?.unwrap_or_default(), row.get::<Vec<u8>>(2)?.unwrap_or_default()));
            }
            Ok(out)
        })
    }

    pub fn library_put(self, name: &str, code: &[u8]) -> Result<(), CmdError> {
        self.exec(&LIBRARY_PUT, &[name.into(), bytea(code)])?;
        Ok(())
    }

    pub fn library_delete(self, name: &str) -> Result<(), CmdError> {
        self.exec(&LIBRARY_DELETE, &[name.into()])?;
        Ok(())
    }

    pub fn library_flush(self) -> Result<(), CmdError> {
        self.exec(&LIBRARY_FLUSH, &[])?;
        Ok(())
    }
}
