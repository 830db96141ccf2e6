//! The storage codec's span batches, as read back from WAL records and block
//! pages: garbage must be an error, never a panic or an unbounded allocation,
//! and whatever decodes must encode to a batch that decodes the same way.
#![no_main]

use libfuzzer_sys::fuzz_target;
use waymark_storage::codec::{decode_spans, encode_spans};

fuzz_target!(|data: &[u8]| {
    if let Ok(spans) = decode_spans(data) {
        let once = encode_spans(&spans);
        let back = decode_spans(&once).expect("the codec reads what it wrote");
        assert!(
            encode_spans(&back) == once,
            "spans changed through the codec"
        );
    }
});
