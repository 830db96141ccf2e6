//! Jaeger's agent UDP endpoints. A reader task moves each datagram into a
//! bounded packet queue (dropping, and counting, when it is full: UDP has no
//! way to push back); a decoder task turns packets into spans for the
//! pipeline. A malformed packet is counted and logged at most every 10 s; it
//! never affects other packets.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

use super::{MAX_PACKET, decode_agent_packet};
use crate::thrift::Protocol;
use crate::{IngestError, Receiver, ReceiverContext, wait_shutdown};

pub struct JaegerUdpReceiver {
    pub socket: UdpSocket,
    pub protocol: Protocol,
    pub ctx: ReceiverContext,
    /// Packets waiting to be decoded at most.
    pub queue_packets: usize,
}

impl JaegerUdpReceiver {
    fn label(&self) -> &'static str {
        match self.protocol {
            Protocol::Compact => super::PROTO_UDP_COMPACT,
            Protocol::Binary => super::PROTO_UDP_BINARY,
        }
    }
}

#[async_trait]
impl Receiver for JaegerUdpReceiver {
    fn name(&self) -> &'static str {
        self.label()
    }

    async fn run(self: Box<Self>, shutdown: watch::Receiver<bool>) -> std::io::Result<()> {
        let label = self.label();
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(self.queue_packets.max(1));
        let ctx = self.ctx.clone();
        let protocol = self.protocol;
        let decoder = tokio::spawn(async move {
            let mut last_log: Option<Instant> = None;
            let mut unlogged = 0u64;
            while let Some(packet) = rx.recv().await {
                let decoded =
                    decode_agent_packet(&packet, protocol, &ctx.limits).map_err(Into::into);
                match ctx.ingest(label, decoded).await {
                    Ok(_) => {}
                    Err(e @ IngestError::Refused(_)) => {
                        tracing::warn!(protocol = label, error = %e, "udp batch not stored");
                    }
                    Err(e) => {
                        unlogged += 1;
                        if last_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                            tracing::warn!(protocol = label, error = %e, packets = unlogged, "malformed udp packets");
                            last_log = Some(Instant::now());
                            unlogged = 0;
                        }
                    }
                }
            }
        });
        let socket = Arc::new(self.socket);
        let metrics = self.ctx.pipeline.metrics().clone();
        let stop = wait_shutdown(shutdown);
        tokio::pin!(stop);
        let mut buf = vec![0u8; MAX_PACKET + 1];
        loop {
            tokio::select! {
                _ = &mut stop => break,
                r = socket.recv_from(&mut buf) => {
                    let (n, _peer) = r?;
                    if n > MAX_PACKET {
                        metrics.count_malformed(label);
                        continue;
                    }
                    if tx.try_send(buf[..n].to_vec()).is_err() {
                        metrics.count_packet_dropped(label);
                    }
                }
            }
        }
        drop(tx);
        let _ = decoder.await;
        Ok(())
    }
}
