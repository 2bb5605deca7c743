//! The RESP2/RESP3 decoder on arbitrary bytes never panics, and whatever it
//! decodes encodes back (in RESP3) to something that decodes to the same
//! frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgkv_resp::{decode, to_bytes, Frame, Protocol};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((frame, used))) = decode(data) {
        assert!(used <= data.len());
        if matches!(frame, Frame::Attribute(..)) {
            return;
        }
        let bytes = to_bytes(&frame, Protocol::Resp3);
        if let Ok(Some((again, _))) = decode(&bytes) {
            assert_eq!(to_bytes(&again, Protocol::Resp3), bytes, "re-encoding is stable");
        }
    }
});
