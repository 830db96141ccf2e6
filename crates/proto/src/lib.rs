//! Protobuf messages and gRPC service stubs for the wire protocols Waymark
//! speaks. The code under `src/gen` is generated from the `.proto` files in
//! `proto/` by `cargo run -p waymark-protogen` and checked in, so building
//! Waymark never needs `protoc`. CI runs the generator with `--check`.
//!
//! This crate holds wire types only: conversions to the span model live in the
//! receivers and the API crates.

#![allow(clippy::all, missing_docs)]

pub mod codec;

/// Module tree mirroring the protobuf packages, as the generated code's
/// relative paths expect.
pub mod opentelemetry {
    pub mod proto {
        pub mod common {
            pub mod v1 {
                include!("gen/opentelemetry.proto.common.v1.rs");
            }
        }
        pub mod resource {
            pub mod v1 {
                include!("gen/opentelemetry.proto.resource.v1.rs");
            }
        }
        pub mod trace {
            pub mod v1 {
                include!("gen/opentelemetry.proto.trace.v1.rs");
            }
        }
        pub mod collector {
            pub mod trace {
                pub mod v1 {
                    include!("gen/opentelemetry.proto.collector.trace.v1.rs");
                }
            }
        }
    }
}

pub mod google {
    pub mod rpc {
        include!("gen/google.rpc.rs");
    }
}

/// Jaeger's api_v2 model, collector, sampling and query services, and the
/// api_v3 query service.
pub mod jaeger {
    pub mod api_v2 {
        include!("gen/jaeger.api_v2.rs");
    }
    pub mod api_v3 {
        include!("gen/jaeger.api_v3.rs");
    }
}

/// Zipkin's v2 span model (`zipkin.proto3`).
pub mod zipkin {
    include!("gen/zipkin.proto3.rs");
}

/// Short paths to the OTLP trace types.
pub mod otlp {
    pub use crate::opentelemetry::proto::collector::trace::v1 as collector;
    pub use crate::opentelemetry::proto::common::v1 as common;
    pub use crate::opentelemetry::proto::resource::v1 as resource;
    pub use crate::opentelemetry::proto::trace::v1 as trace;
}
