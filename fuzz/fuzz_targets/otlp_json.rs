//! OTLP/JSON ExportTraceServiceRequest (HTTP, application/json).
#![no_main]

use libfuzzer_sys::fuzz_target;
use waymark_fuzz::{check, limits};

fuzz_target!(|data: &[u8]| {
    check(waymark_receivers::otlp::decode_json(data, &limits()));
});
