"""Jaeger's Python client with its remote sampler against adaptive
sampling: polls per-operation probabilities from the sampling port while it
starts root spans of a busy and a quiet operation, and prints, per second,
how many traces of each it sampled, plus the probabilities it ended with."""

import json
import sys
import time

from jaeger_remote import remote_sampled_tracer


def main(host: str, sampling_port: int, agent_port: int, service: str, seconds: float,
         hot_rate: float, cold_rate: float) -> None:
    tracer = remote_sampled_tracer(host, sampling_port, agent_port, service, 0.5)
    per_second = []
    start = time.time()
    next_hot = next_cold = start
    current = {"second": 0, "hot": 0, "cold": 0}
    while time.time() - start < seconds:
        now = time.time()
        second = int(now - start)
        if second != current["second"]:
            per_second.append(current)
            current = {"second": second, "hot": 0, "cold": 0}
        for op, rate in (("hot", hot_rate), ("cold", cold_rate)):
            due = next_hot if op == "hot" else next_cold
            while due <= now:
                span = tracer.start_span(op)
                if span.is_sampled():
                    current[op] += 1
                span.finish()
                due += 1.0 / rate
            if op == "hot":
                next_hot = due
            else:
                next_cold = due
        time.sleep(0.002)
    per_second.append(current)
    sampler = tracer.sampler.sampler
    probabilities = {op: s.probabilistic_sampler.rate for op, s in getattr(sampler, "samplers", {}).items()}
    tracer.close()
    time.sleep(1.0)
    print(json.dumps({"sampler": type(sampler).__name__, "per_second": per_second,
                      "probabilities": probabilities}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5]),
         float(sys.argv[6]), float(sys.argv[7]))
