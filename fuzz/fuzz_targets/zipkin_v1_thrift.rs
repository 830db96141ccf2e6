//! Zipkin v1 Thrift span list (POST /api/v1/spans, application/x-thrift).
#![no_main]

use libfuzzer_sys::fuzz_target;
use waymark_fuzz::{check, limits};

fuzz_target!(|data: &[u8]| {
    check(waymark_receivers::zipkin::v1::decode_v1_thrift(
        data,
        &limits(),
    ));
});
