//! Jaeger collector HTTP body (POST /api/traces): a Thrift binary Batch.
#![no_main]

use libfuzzer_sys::fuzz_target;
use waymark_fuzz::{check, limits};
use waymark_receivers::thrift::Protocol;

fuzz_target!(|data: &[u8]| {
    check(waymark_receivers::jaeger::decode_http_batch(
        data,
        Protocol::Binary,
        &limits(),
    ));
});
