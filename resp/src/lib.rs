//! The wire layer of pgkv: RESP2 and RESP3. It knows nothing about storage or
//! commands, so it is tested and fuzzed without PostgreSQL.
//!
//! - [`request`]: what a server reads (multibulk and inline requests), with
//!   Redis's exact protocol errors.
//! - [`encode`]: replies, downgraded to RESP2 when the connection asks for it.
//! - [`decode`]: every RESP2/RESP3 type, as a client reads it.

pub mod decode;
pub mod encode;
pub mod frame;
pub mod glob;
pub mod num;
pub mod request;

pub use decode::{decode, DecodeError};
pub use encode::{encode, encode_request, to_bytes, Protocol};
pub use frame::Frame;
pub use request::{Limits, ProtocolError, RequestParser};

#[cfg(test)]
mod tests;
