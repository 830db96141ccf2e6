//! Zipkin v2 protobuf ListOfSpans (POST /api/v2/spans, application/x-protobuf).
#![no_main]

use libfuzzer_sys::fuzz_target;
use waymark_fuzz::{check, limits};

fuzz_target!(|data: &[u8]| {
    check(waymark_receivers::zipkin::proto::decode_v2_proto(
        data,
        &limits(),
    ));
});
