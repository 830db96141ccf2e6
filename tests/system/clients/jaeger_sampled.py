"""Jaeger's Python client with its remote sampler: polls the strategies from
the sampling port, then starts root spans of two operations and prints which
trace ids the client decided to sample, as JSON."""

import json
import sys
import time

from jaeger_remote import remote_sampled_tracer


def main(host: str, sampling_port: int, agent_port: int, service: str) -> None:
    tracer = remote_sampled_tracer(host, sampling_port, agent_port, service, 0.2)
    sampled = {"keep": [], "drop": []}
    for op in ("keep", "drop"):
        for _ in range(10):
            span = tracer.start_span(op)
            if span.is_sampled():
                sampled[op].append(f"{span.trace_id:032x}" if span.trace_id >> 64 else f"{span.trace_id:016x}")
            span.finish()
    tracer.close()
    time.sleep(1.0)
    print(json.dumps({"sampler": type(tracer.sampler.sampler).__name__, "sampled": sampled}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
