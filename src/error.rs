//! One error type for every command, mapped to Redis's reply prefixes.
//! The texts are Redis 7.0's, byte for byte; a reply error keeps the
//! connection open (only protocol errors close it, see `pgkv_resp::request`).

use bytes::Bytes;
use pgkv_resp::Frame;

pub const SYNTAX: &str = "ERR syntax error";
pub const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
pub const NOAUTH: &str = "NOAUTH Authentication required.";
pub const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";
pub const DB_OUT_OF_RANGE: &str = "ERR DB index is out of range";
pub const NO_PASSWORD_SET: &str = "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?";
pub const HELLO_NOAUTH: &str = "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time";
pub const NOPROTO: &str = "NOPROTO unsupported protocol version";
pub const BAD_CLIENT_NAME: &str = "ERR Client names cannot contain spaces, newlines or special characters.";
pub const NOT_FROM_SQL: &str = "ERR This Redis command is not allowed from SQL";

#[derive(Debug, Clone, PartialEq)]
pub enum CmdError {
    /// A complete reply text with its prefix, e.g. one of the constants above.
    Static(&'static str),
    /// A formatted reply text with its prefix.
    Msg(Bytes),
    /// `ERR wrong number of arguments for '<fullname>' command`
    Arity(String),
    /// A PostgreSQL error raised while running the command. Only this command
    /// fails; the text says where it came from.
    Postgres(String),
    /// A concurrent transaction created a key this command meant to create:
    /// the dispatcher runs the command again. Never reaches a client.
    Retry,
}

pub type CmdResult = Result<Frame, CmdError>;

impl CmdError {
    pub fn msg(text: impl Into<String>) -> CmdError {
        CmdError::Msg(Bytes::from(sanitize(text.into().into_bytes())))
    }

    pub fn syntax() -> CmdError {
        CmdError::Static(SYNTAX)
    }

    pub fn not_integer() -> CmdError {
        CmdError::Static(NOT_INTEGER)
    }

    pub fn wrong_type() -> CmdError {
        CmdError::Static(WRONGTYPE)
    }

    pub fn text(&self) -> Bytes {
        match self {
            CmdError::Static(s) => Bytes::from_static(s.as_bytes()),
            CmdError::Msg(b) => b.clone(),
            CmdError::Arity(name) => Bytes::from(format!("ERR wrong number of arguments for '{name}' command")),
            CmdError::Postgres(m) => Bytes::from(sanitize(format!("ERR PostgreSQL error: {m}").into_bytes())),
            CmdError::Retry => Bytes::from_static(b"ERR concurrent update, please retry"),
        }
    }

    pub fn into_frame(self) -> Frame {
        Frame::Error(self.text())
    }
}

impl From<pgrx::spi::SpiError> for CmdError {
    fn from(e: pgrx::spi::SpiError) -> Self {
        CmdError::Postgres(e.to_string())
    }
}

/// Redis replaces CR and LF in error texts so the reply stays one line.
pub fn sanitize(mut v: Vec<u8>) -> Vec<u8> {
    for c in v.iter_mut() {
        if *c == b'\r' || *c == b'\n' {
            *c = b' ';
        }
    }
    v
}
