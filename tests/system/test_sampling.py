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


ADAPTIVE_ARGS = [
    "--sampling-adaptive", "true",
    "--adaptive-calculation-interval", "1s",
    "--adaptive-lookback", "2s",
    "--adaptive-target-samples-per-second", "5",
    "--adaptive-initial-sampling-probability", "0.5",
    "--adaptive-min-samples-per-second", "1",
]


def _probabilities(srv, service: str) -> dict:
    r = requests.get(f"http://127.0.0.1:{srv.sampling_port}/sampling",
                     params={"service": service}, timeout=5)
    assert r.status_code == 200, r.text
    ops = r.json()["operationSampling"]["perOperationStrategies"]
    return {o["operation"]: o["probabilisticSampling"]["samplingRate"] for o in ops}


def test_adaptive_sampling_converges_with_a_real_client_and_survives_restart(make_server, tmp_path):
    """Jaeger's Python client samples a busy operation (200 traces/s) and a
    quiet one (2/s) under adaptive sampling with a target of 5 sampled
    traces/s per operation: the busy one's probability falls to about
    5/200, the quiet one's rises to 1, the client's sampled rate follows,
    and the probabilities come back from the store after a restart."""
    data_dir = tmp_path / "data"
    srv = make_server(data_dir=data_dir, extra_args=ADAPTIVE_ARGS)
    srv.start()
    service = "adaptive-py"
    initial = requests.get(f"http://127.0.0.1:{srv.sampling_port}/sampling",
                           params={"service": service}, timeout=5).json()
    assert initial["probabilisticSampling"] == {"samplingRate": 0.5}, initial
    assert initial["operationSampling"]["defaultLowerBoundTracesPerSecond"] == 1

    client = pathlib.Path(__file__).parent / "clients" / "jaeger_adaptive.py"
    out = subprocess.run([sys.executable, str(client), "127.0.0.1", str(srv.sampling_port),
                          str(srv.jaeger_compact_port), service, "16", "200", "2"],
                         capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["sampler"] == "AdaptiveSampler", result
    print("client per second:", result["per_second"])
    print("client probabilities:", result["probabilities"])

    probs = _probabilities(srv, service)
    print("server probabilities:", probs)
    # 5 of 200 per second is 0.025; the damping and Poisson noise allow a band.
    assert 0.005 <= probs["hot"] <= 0.1, probs
    assert probs["cold"] >= 0.9, probs
    # The client obeyed: in the last five seconds it sampled about the
    # target of the busy operation, not the 100/s of the initial 0.5.
    tail = result["per_second"][-6:-1]
    hot = sum(s["hot"] for s in tail) / len(tail)
    assert 1.5 <= hot <= 15, tail
    assert abs(result["probabilities"]["hot"] - probs["hot"]) <= 0.05, result["probabilities"]

    # With no traffic nothing changes; the state is in the store, so a
    # restarted collector hands out the same probabilities at once.
    time.sleep(2.5)
    before = _probabilities(srv, service)
    state = data_dir / "sampling"
    assert (state / "probabilities.json").exists() and (state / "throughput.jsonl").exists()
    srv.stop()
    srv2 = make_server(data_dir=data_dir, extra_args=ADAPTIVE_ARGS)
    srv2.start()
    assert _probabilities(srv2, service) == before


def test_adaptive_settings_are_checked(make_server):
    srv = make_server(extra_args=ADAPTIVE_ARGS + ["--adaptive-min-sampling-probability", "0"])
    srv.start(wait=False)
    deadline = time.monotonic() + 20
    while srv.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not srv.alive(), "a zero minimum probability must be refused"
    assert "min_sampling_probability" in srv.stderr_tail(), srv.stderr_tail()
