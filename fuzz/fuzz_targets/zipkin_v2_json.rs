//! Zipkin v2 JSON span list (POST /api/v2/spans).
#![no_main]

use libfuzzer_sys::fuzz_target;
use waymark_fuzz::{check, limits};

fuzz_target!(|data: &[u8]| {
    check(waymark_receivers::zipkin::json::decode_v2_json(
        data,
        &limits(),
    ));
});
