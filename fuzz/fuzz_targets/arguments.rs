//! Argument parsing shared by every command: Redis's integer rules (only
//! canonical decimal fits, as `string2ll`), glob matching (never panics,
//! even on hostile patterns), and double formatting.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgkv_resp::{glob, num};

fuzz_target!(|data: &[u8]| {
    if let Some(n) = num::parse_i64(data) {
        assert_eq!(n.to_string().as_bytes(), data, "only the canonical spelling parses");
    }
    let mid = data.len() / 2;
    let (pattern, subject) = data.split_at(mid);
    let _ = glob::matches(pattern, subject);
    if data.len() == 8 {
        let d = f64::from_le_bytes(data.try_into().unwrap());
        let _ = num::format_double_reply(d);
        let _ = num::format_g(d, 17);
    }
});
