"""Emits one trace with Jaeger's Python client (jaeger-client) over UDP to
the agent port (Thrift compact, 6831 by default), then prints what it sent
as JSON: trace id, and per span its id, parent, name, tags and logs."""

import json
import sys
import time

from jaeger_client import Config


def main(host: str, port: int, service: str) -> None:
    config = Config(
        config={
            "sampler": {"type": "const", "param": 1},
            "local_agent": {"reporting_host": host, "reporting_port": port},
            "reporter_batch_size": 10,
            "logging": False,
        },
        service_name=service,
        validate=True,
    )
    tracer = config.new_tracer()
    sent = []
    root = tracer.start_span("GET /orders", tags={"span.kind": "server", "http.status_code": 200,
                                                  "http.url": "/orders", "ratio": 0.5,
                                                  "cache.hit": True})
    time.sleep(0.003)
    child = tracer.start_span("select orders", child_of=root,
                              tags={"span.kind": "client", "db.type": "sql", "error": True})
    child.log_kv({"event": "retry", "attempt": 2})
    time.sleep(0.002)
    child.finish()
    root.finish()
    for s in (root, child):
        sent.append({
            "span_id": f"{s.span_id:016x}",
            "parent_id": f"{s.parent_id:016x}" if s.parent_id else "",
            "name": s.operation_name,
            "start_us": int(s.start_time * 1e6),
            "duration_us": int((s.end_time - s.start_time) * 1e6),
        })
    trace_id = f"{root.trace_id:032x}" if root.trace_id >> 64 else f"{root.trace_id:016x}"
    # close() flushes the reporter on the client's I/O loop thread.
    tracer.close()
    time.sleep(1.0)
    print(json.dumps({"trace_id": trace_id, "spans": sent, "service": service}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
