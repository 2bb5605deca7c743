//! `pgkv.auth = 'postgres'`: a RESP client logs in as a PostgreSQL role.

use super::sql::{read, Sql};
use super::Store;
use crate::error::CmdError;
use pgrx::pg_sys::{self, PgOid};

const TEXT: PgOid = PgOid::BuiltIn(pg_sys::BuiltinOid::TEXTOID);

// The role may log in, its password has not expired, and it may use pgkv:
// a member of pgkv_client, or the extension's owner.
static ROLE: Sql = read(
    "SELECT r.oid::int8, r.rolpassword, \
            r.rolcanlogin AND (r.rolvaliduntil IS NULL OR r.rolvaliduntil > now()) \
            AND (pg_has_role(r.oid, 'pgkv_client', 'MEMBER') \
                 OR r.oid = (SELECT extowner FROM pg_extension WHERE extname = 'pgkv')) \
     FROM pg_authid r WHERE r.rolname = $1",
    &[TEXT],
);

/// What AUTH needs to know about a role.
pub struct RoleLogin {
    pub oid: pg_sys::Oid,
    /// The stored verifier (SCRAM-SHA-256 or md5), if the role has one.
    pub secret: Option<String>,
    pub allowed: bool,
}

impl<'a> Store<'a> {
    pub fn role_login(self, name: &str) -> Result<Option<RoleLogin>, CmdError> {
        self.run(&ROLE, &[name.into()], |rows| {
            let Some(row) = rows.into_iter().next() else { return Ok(None) };
            let oid = row.get::<i64>(1)?.unwrap_or_default();
            Ok(Some(RoleLogin {
                oid: pg_sys::Oid::from(oid as u32),
                secret: row.get::<String>(2)?,
                allowed: row.get::<bool>(3)?.unwrap_or(false),
            }))
        })
    }
}

/// Checks `password` against a role's stored verifier with Postgres's own
/// code (`plain_crypt_verify`: SCRAM-SHA-256 or md5).
pub fn verify_password(role: &str, secret: &str, password: &[u8]) -> bool {
    let (Ok(role), Ok(secret), Ok(password)) =
        (std::ffi::CString::new(role), std::ffi::CString::new(secret), std::ffi::CString::new(password))
    else {
        return false;
    };
    let mut detail: *const std::ffi::c_char = std::ptr::null();
    // SAFETY: NUL-terminated strings that outlive the call; Postgres only
    // reads them and may set `detail` to a static string.
    let status = unsafe {
        pg_sys::submodules::ffi::pg_guard_ffi_boundary(|| {
            pg_sys::plain_crypt_verify(role.as_ptr(), secret.as_ptr(), password.as_ptr(), &mut detail)
        })
    };
    status == pg_sys::STATUS_OK as i32
}
