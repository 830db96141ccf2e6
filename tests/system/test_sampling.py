"""Remote sampling as Jaeger clients use it: strategies from a Jaeger-format
file, served on the sampling port and the Jaeger HTTP port, reloaded when the
file changes, and obeyed by Jaeger's own Python client."""

import json
import pathlib
import subprocess
import sys
import time

import requests


STRATEGIES = {
    "service_strategies": [
        {"service": "sampled-py", "type": "probabilistic", "param": 0.0,
         "operation_strategies": [{"operation": "keep", "type": "probabilistic", "param": 1.0}]},
        {"service": "limited", "type": "ratelimiting", "param": 7},
    ],
    "default_strategy": {"type": "probabilistic", "param": 0.25},
}


def test_strategies_served_obeyed_and_reloaded(make_server, tmp_path):
    path = tmp_path / "strategies.json"
    path.write_text(json.dumps(STRATEGIES))
    srv = make_server(extra_args=["--sampling-strategies-file", str(path)])
    srv.start()
    sampling_port = srv.sampling_port
    base = f"http://127.0.0.1:{sampling_port}"

    r = requests.get(base + "/sampling", params={"service": "limited"}, timeout=5)
    assert r.json() == {"strategyType": "RATE_LIMITING", "rateLimitingSampling": {"maxTracesPerSecond": 7}}
    r = requests.get(base + "/", params={"service": "someone"}, timeout=5)
    assert r.json() == {"strategyType": 0, "probabilisticSampling": {"samplingRate": 0.25}}
    r = requests.get(f"http://127.0.0.1:{srv.jaeger_http_port}/api/sampling",
                     params={"service": "sampled-py"}, timeout=5)
    ops = r.json()["operationSampling"]["perOperationStrategies"]
    assert ops == [{"operation": "keep", "probabilisticSampling": {"samplingRate": 1.0}}]
    assert requests.get(base + "/sampling", timeout=5).status_code == 400

    # Jaeger's Python client follows the per-operation strategy.
    client = pathlib.Path(__file__).parent / "clients" / "jaeger_sampled.py"
    out = subprocess.run([sys.executable, str(client), "127.0.0.1", str(sampling_port),
                          str(srv.jaeger_compact_port), "sampled-py"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["sampler"] == "AdaptiveSampler", result
    assert len(result["sampled"]["keep"]) == 10 and result["sampled"]["drop"] == [], result
    for trace_id in result["sampled"]["keep"]:
        deadline = time.monotonic() + 10
        while requests.get(f"{srv.query_url}/api/traces/{trace_id}", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, f"sampled trace {trace_id} never arrived"
            time.sleep(0.1)

    # Changing the file changes the answer (checked every 10 s by default).
    changed = dict(STRATEGIES, default_strategy={"type": "probabilistic", "param": 0.75})
    path.write_text(json.dumps(changed))
    deadline = time.monotonic() + 25
    while True:
        rate = requests.get(base + "/sampling", params={"service": "someone"},
                            timeout=5).json()["probabilisticSampling"]["samplingRate"]
        if rate == 0.75:
            break
        assert time.monotonic() < deadline, "strategies file change not picked up"
        time.sleep(0.5)


def test_invalid_strategies_file_refuses_to_start(make_server, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"default_strategy": {"type": "probabilistic", "param": 3}}')
    srv = make_server(extra_args=["--sampling-strategies-file", str(path)])
    try:
        srv.start()
        raise AssertionError("server started with an invalid strategies file")
    except AssertionError as e:
        if "started with an invalid" in str(e):
            raise
    assert "not within [0, 1]" in srv.stderr_tail()
