//! The agent: receivers on a node write into a durable disk queue before
//! acknowledging, and a forwarder sends the queued spans to collectors over
//! OTLP gRPC, deleting them only once a collector acknowledged them. A
//! collector outage costs no spans (they wait on disk, within the queue's
//! byte bound), and a crash of the agent costs no acknowledged span.
//!
//! The queue reuses the WAL's segment format (length, CRC32C, span batch)
//! and adds a cursor file; see `docs/storage-format.md`.

pub mod forwarder;
pub mod queue;

pub use forwarder::{Forwarder, ForwarderConfig};
pub use queue::{DiskQueue, Position, QueueConfig, QueueError, QueueSink};
