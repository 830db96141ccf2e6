//! Zipkin v1 JSON span list (POST /api/v1/spans).
#![no_main]

use libfuzzer_sys::fuzz_target;
use waymark_fuzz::{check, limits};

fuzz_target!(|data: &[u8]| {
    check(waymark_receivers::zipkin::v1::decode_v1_json(
        data,
        &limits(),
    ));
});
