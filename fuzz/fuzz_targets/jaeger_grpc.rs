//! Jaeger gRPC PostSpansRequest (14250), decoded by prost then converted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use waymark_fuzz::{check, limits};
use waymark_proto::jaeger::api_v2::PostSpansRequest;

fuzz_target!(|data: &[u8]| {
    if let Ok(PostSpansRequest {
        batch: Some(batch), ..
    }) = PostSpansRequest::decode(data)
    {
        check(waymark_receivers::jaeger::grpc::decode_batch(
            batch,
            &limits(),
        ));
    }
});
