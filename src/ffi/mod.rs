//! Foreign code pgkv carries itself. Only `longdouble.c` today: Redis does
//! INCRBYFLOAT in C long double, which Rust cannot express.

use std::os::raw::{c_char, c_int};

extern "C" {
    fn pgkv_ld_parse(s: *const c_char, slen: usize, finite: *mut c_int) -> c_int;
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
