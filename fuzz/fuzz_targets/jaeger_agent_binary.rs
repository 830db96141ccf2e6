//! Jaeger agent UDP packet, Thrift binary protocol (6832): Agent.emitBatch.
#![no_main]

use libfuzzer_sys::fuzz_target;
use waymark_fuzz::{check, limits};
use waymark_receivers::thrift::Protocol;

fuzz_target!(|data: &[u8]| {
    check(waymark_receivers::jaeger::decode_agent_packet(
        data,
        Protocol::Binary,
        &limits(),
    ));
});
