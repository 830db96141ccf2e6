//! OTLP/protobuf ExportTraceServiceRequest, as gRPC and HTTP receive it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use waymark_fuzz::{check, limits};

fuzz_target!(|data: &[u8]| {
    check(waymark_receivers::otlp::decode_protobuf(data, &limits()));
});
