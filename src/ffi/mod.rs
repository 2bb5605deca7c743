//! Foreign code pgkv carries itself: `longdouble.c`. Redis does INCRBYFLOAT
//! in C long double, which Rust cannot express, and parses scores with
//! strtod, whose accepted syntax (hex floats, overflow rules) Rust's parser
//! does not share.

use std::os::raw::{c_char, c_int};

pub mod notify;
pub mod unguarded;

extern "C" {
    fn pgkv_ld_parse(s: *const c_char, slen: usize, finite: *mut c_int) -> c_int;
    fn pgkv_string2d(s: *const c_char, slen: usize, out: *mut f64) -> c_int;
    fn pgkv_strtod_range(s: *const c_char, slen: usize, out: *mut f64) -> c_int;
    fn pgkv_ld_add(a: *const c_char, alen: usize, b: *const c_char, blen: usize, out: *mut c_char, outlen: usize) -> c_int;
}

#[derive(Debug, PartialEq, Eq)]
pub enum AddError {
    /// The current value is not a float.
    BadValue,
    /// The increment is not a float.
    BadIncrement,
    /// The sum is NaN or infinite.
    NotFinite,
}

/// Whether `s` is a float as Redis's `string2ld` accepts it; `Some(finite)`.
pub fn parse_long_double(s: &[u8]) -> Option<bool> {
    let mut finite: c_int = 0;
    // SAFETY: the pointers cover `s` and a local; the C side copies `s` into
    // its own NUL-terminated buffer.
    let ok = unsafe { pgkv_ld_parse(s.as_ptr().cast(), s.len(), &mut finite) };
    (ok == 1).then_some(finite != 0)
}

/// `a + b` in long double, formatted as Redis's INCRBYFLOAT reply.
pub fn add_long_double(a: &[u8], b: &[u8]) -> Result<Vec<u8>, AddError> {
    let mut out = vec![0u8; 5 * 1024];
    // SAFETY: all pointers cover their buffers; `out` is large enough for
    // any %.17Lf (the C side also checks its length).
    let n = unsafe { pgkv_ld_add(a.as_ptr().cast(), a.len(), b.as_ptr().cast(), b.len(), out.as_mut_ptr().cast(), out.len()) };
    match n {
        -1 => Err(AddError::BadValue),
        -2 => Err(AddError::BadIncrement),
        n if n < 0 => Err(AddError::NotFinite),
        n => {
            out.truncate(n as usize);
            Ok(out)
        }
    }
}

/// A double as Redis's `string2d` parses it (scores, weights): strtod's
/// syntax, the whole argument, no leading space, no NaN, no overflow.
pub fn parse_double(s: &[u8]) -> Option<f64> {
    let mut out = 0f64;
    // SAFETY: the pointers cover `s` and a local; the C side copies `s`.
    let ok = unsafe { pgkv_string2d(s.as_ptr().cast(), s.len(), &mut out) };
    (ok == 1).then_some(out)
}

/// A range bound's number as Redis's `zslParseRange` reads it: plain
/// strtod, only requiring that all of it was read and it is not NaN.
pub fn parse_range_double(s: &[u8]) -> Option<f64> {
    let mut out = 0f64;
    // SAFETY: as in `parse_double`.
    let ok = unsafe { pgkv_strtod_range(s.as_ptr().cast(), s.len(), &mut out) };
    (ok == 1).then_some(out)
}
