"""Shared by the Jaeger client scripts: a tracer of Jaeger's Python client
whose sampler polls strategies from Waymark's sampling port, returned once
the first remote strategy has replaced the initial one."""

import time

from jaeger_client import Config


def remote_sampled_tracer(host: str, sampling_port: int, agent_port: int, service: str,
                          refresh_s: float):
    tracer = Config(
        config={
            # No sampler type: the client then polls the sampling port.
            "sampling_refresh_interval": refresh_s,
            "local_agent": {"reporting_host": host, "reporting_port": agent_port,
                            "sampling_port": sampling_port},
            "logging": False,
        },
        service_name=service,
        validate=True,
    ).new_tracer()
    deadline = time.time() + 10
    while time.time() < deadline and type(tracer.sampler.sampler).__name__ != "AdaptiveSampler":
        time.sleep(0.05)
    return tracer
