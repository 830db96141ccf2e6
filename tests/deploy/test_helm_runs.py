"""The rendered workloads run: each Waymark container's command line, as
the chart renders it, is executed against the real binary (WAYMARK_BIN) the
way a kubelet would start it: volumes become directories (ConfigMap volumes
hold their keys), container ports move to free loopback ports and Service
names in arguments resolve to the container behind the Service. Every probe
is then asked on the running process, on the probe's own port and path.

The distributed test starts the collector pod's two containers, the query
container first (the kubelet starts them together, so it may win the race
on a new volume), then an agent whose --collector is the headless
collector Service (resolved, as cluster DNS would, to the collector pod),
and follows one span from the agent to the query API.
"""

from __future__ import annotations

import os
import secrets
import socket
import time

import pytest
import requests

import deploy_support as ds

SAMPLING = {"default_strategy": {"type": "probabilistic", "param": 0.25},
            "service_strategies": [{"service": "checkout", "type": "ratelimiting", "param": 7}]}


def _tcp_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _service_ports_listen(r: ds.Rendered, fc: ds.FakeCluster) -> None:
    """Every TCP port of every Service reaches a listening socket of a
    running container (UDP ports are bound, or the process would not have
    started; see the listen-flag checks in FakeCluster)."""
    for svc in r.all("Service"):
        for sp in svc["spec"]["ports"]:
            if sp["protocol"] != "TCP":
                continue
            local = fc.resolve_service(f"{svc['metadata']['name']}.{ds.NAMESPACE}.svc", sp["port"])
            assert _tcp_open(local), f"{svc['metadata']['name']}:{sp['name']} is not listening"


def _otlp_json_span(service: str, trace_id: str, name: str) -> dict:
    now = time.time_ns()
    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"spans": [{
            "traceId": trace_id, "spanId": secrets.token_hex(8), "name": name, "kind": 2,
            "startTimeUnixNano": str(now - 5_000_000), "endTimeUnixNano": str(now),
        }]}],
    }]}


def _wait_trace(query_port: int, trace_id: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        r = requests.get(f"http://127.0.0.1:{query_port}/api/traces/{trace_id}", timeout=5)
        if r.status_code == 200 and r.json().get("data"):
            return r.json()["data"][0]
        last = (r.status_code, r.text[:200])
        time.sleep(0.2)
    raise AssertionError(f"trace {trace_id} not found through the query API: {last}")


def _send(port: int, service: str, name: str) -> str:
    trace_id = secrets.token_hex(16)
    r = requests.post(f"http://127.0.0.1:{port}/v1/traces", json=_otlp_json_span(service, trace_id, name),
                      timeout=10)
    assert r.status_code == 200, r.text
    return trace_id


@pytest.mark.parametrize("values", [
    {},
    {"sampling": {"strategies": SAMPLING}, "otlp": {"corsAllowedOrigins": ["https://a.example"]},
     "extraArgs": ["--forward-gzip=false"], "extraEnv": [{"name": "RUST_BACKTRACE", "value": "1"}],
     "storage": {"embedded": {"retention": "3d", "fsync": "always", "headMaxAge": "5s"}}},
    # A changed admin port moves the flag, the container port and the probes together.
    {"ports": {"admin": 15999}},
], ids=["defaults", "sampling-and-options", "admin-port-15999"])
def test_all_in_one_runs_and_its_probes_answer(cluster, values):
    r = ds.render(values)
    sts = r.get("StatefulSet", "waymark")
    [c] = ds.long_running_containers(sts)
    admin = ds.merged_values(values)["ports"]["admin"]
    assert f"--admin-listen=0.0.0.0:{admin}" in c["args"]
    assert ds.container_port(c, "admin")["containerPort"] == admin
    fc = cluster(r.docs)
    rc = fc.start(sts, c)
    probes = ds.check_probes(rc)
    assert [(k, p) for k, p, _ in probes] == [
        ("startupProbe", "/ready"), ("readinessProbe", "/ready"), ("livenessProbe", "/health")]
    assert {port for _, _, port in probes} == {admin}
    _service_ports_listen(r, fc)
    # Spans in through the collector Service, out through the query Service.
    otlp = fc.resolve_service("waymark-collector.tracing.svc", 4318)
    trace_id = _send(otlp, "checkout", "GET /cart")
    query = fc.resolve_service("waymark-query.tracing.svc.cluster.local", 16686)
    trace = _wait_trace(query, trace_id)
    assert trace["spans"][0]["operationName"] == "GET /cart"
    metrics = requests.get(f"http://127.0.0.1:{rc.local_port('admin')}/metrics", timeout=5).text
    assert 'waymark_spans_received_total{protocol="otlp_http"} 1' in metrics
    if values.get("sampling"):
        sampling = fc.resolve_service("waymark-collector.tracing.svc", 5778)
        s = requests.get(f"http://127.0.0.1:{sampling}/sampling?service=checkout", timeout=5).json()
        assert s["strategyType"] in ("RATE_LIMITING", 1) or "rateLimitingSampling" in s, s
        assert s["rateLimitingSampling"]["maxTracesPerSecond"] == 7


@pytest.mark.parametrize("values", [
    {"mode": "distributed"},
    {"mode": "distributed", "ports": {"admin": 15269, "queryAdmin": 15270, "otlpGrpc": 14317},
     "sampling": {"strategies": SAMPLING}},
], ids=["defaults", "moved-ports-and-sampling"])
def test_distributed_runs_end_to_end(cluster, values):
    r = ds.render(values)
    fc = cluster(r.docs)
    sts = r.get("StatefulSet", "waymark-collector")
    collector, query = ds.long_running_containers(sts)
    assert (collector["name"], query["name"]) == ("collector", "query")
    # The two are ordinary containers started together: let the query
    # container come first, on the still empty volume. It waits, alive and
    # not ready, until the collector has created the store. Its volume is
    # read-only: run it as a user that cannot write the collector's files.
    q = fc.start(sts, query, run_as_nobody=True)
    q_admin = q.local_port("query-admin")
    ds.wait_http(f"http://127.0.0.1:{q_admin}/health", 200, proc=q)
    waiting = requests.get(f"http://127.0.0.1:{q_admin}/ready", timeout=5)
    assert waiting.status_code == 503 and "waiting for a collector" in waiting.text, waiting.text
    c = fc.start(sts, collector)
    ds.check_probes(c)
    ds.check_probes(q)
    if os.geteuid() == 0:
        uid = [ln for ln in open(f"/proc/{q.proc.pid}/status") if ln.startswith("Uid:")][0].split()[1]
        assert uid == "65534", "the query process should run as nobody"
    ds_agent = r.get("DaemonSet", "waymark-agent")
    [agent_c] = ds.long_running_containers(ds_agent)
    a = fc.start(ds_agent, agent_c)
    ds.check_probes(a)
    _service_ports_listen(r, fc)

    # The agent forwards to the headless collector Service it was given.
    agent_otlp = fc.resolve_service("waymark-agent.tracing.svc", ds.merged_values(values)["ports"]["otlpHttp"])
    trace_id = _send(agent_otlp, "checkout", "POST /pay")
    query_port = fc.resolve_service("waymark-query.tracing.svc", 16686)
    trace = _wait_trace(query_port, trace_id)
    assert trace["processes"][trace["spans"][0]["processID"]]["serviceName"] == "checkout"
    metrics = requests.get(f"http://127.0.0.1:{a.local_port('admin')}/metrics", timeout=5).text
    assert "waymark_agent_forwarded_spans_total 1" in metrics
    # The query container stays read-only: the collector alone wrote.
    assert q.alive() and c.alive()

    # The agent's sampling port proxies the collector's strategies.
    if values.get("sampling"):
        sp = fc.resolve_service("waymark-agent.tracing.svc", 5778)
        s = requests.get(f"http://127.0.0.1:{sp}/sampling?service=checkout", timeout=10).json()
        assert s["rateLimitingSampling"]["maxTracesPerSecond"] == 7


ADAPTIVE = {"enabled": True, "targetSamplesPerSecond": 3, "minSamplesPerSecond": 0.25,
            "initialSamplingProbability": 0.02, "calculationInterval": "1s", "lookback": "3s"}


@pytest.mark.parametrize("mode", ["allInOne", "distributed"])
def test_adaptive_sampling_runs_in_the_writer(cluster, mode):
    """With sampling.adaptive on, the store's writer runs with the rendered
    flags (the binary accepts them all, the default 0.00001 rendered as
    1e-05 included) and its sampling port answers a per-operation strategy
    with the lower bound given; its state lives in the store's volume. In
    distributed mode the agent passes the collector's answer on."""
    values = {"mode": mode, "sampling": {"adaptive": ADAPTIVE}}
    r = ds.render(values)
    fc = cluster(r.docs)
    sts = r.get("StatefulSet", "waymark" if mode == "allInOne" else "waymark-collector")
    writer = ds.long_running_containers(sts)[0]
    flags = ds.flag_values(writer["args"])
    assert flags["sampling-adaptive"] == "true"
    assert flags["adaptive-min-sampling-probability"] == "1e-05"
    w = fc.start(sts, writer)
    ds.check_probes(w)
    ports = [fc.resolve_service("waymark-collector.tracing.svc", 5778)]
    if mode == "distributed":
        ds_agent = r.get("DaemonSet", "waymark-agent")
        [agent_c] = ds.long_running_containers(ds_agent)
        assert not [a for a in agent_c["args"] if "adaptive" in a]
        ds.check_probes(fc.start(ds_agent, agent_c))
        ports.append(fc.resolve_service("waymark-agent.tracing.svc", 5778))
    for port in ports:
        got = requests.get(f"http://127.0.0.1:{port}/sampling?service=x", timeout=10)
        assert got.status_code == 200, got.text
        ops = got.json()["operationSampling"]
        assert ops["defaultLowerBoundTracesPerSecond"] == ADAPTIVE["minSamplesPerSecond"], got.text
        assert ops["defaultSamplingProbability"] == ADAPTIVE["initialSamplingProbability"], got.text
    assert (fc.volumes[(sts["metadata"]["name"], "data")] / "sampling").is_dir()
    assert w.alive()


def test_query_container_alone_on_an_empty_volume_waits(cluster):
    """`waymark query` on a data directory no collector has initialised yet
    waits, alive and not ready, instead of exiting: a query container that
    starts first is never restarted in a loop."""
    r = ds.render({"mode": "distributed"})
    sts = r.get("StatefulSet", "waymark-collector")
    _, query = ds.long_running_containers(sts)
    fc = cluster(r.docs)
    rc = fc.start(sts, query)
    admin = rc.local_port("query-admin")
    time.sleep(2.0)
    assert rc.alive(), rc.log_tail()
    assert "waiting for a collector to create the store" in rc.log_tail()
    ready = requests.get(f"http://127.0.0.1:{admin}/ready", timeout=5)
    assert ready.status_code == 503, ready.text
    assert requests.get(f"http://127.0.0.1:{admin}/health", timeout=5).status_code == 200


def test_probes_move_with_a_changed_admin_port():
    """No value can split the admin listener from its probes: every port
    value renders the same number into --admin-listen and the probed
    container port."""
    for values in ({"ports": {"admin": 9000}},
                   {"mode": "distributed", "ports": {"admin": 9001, "queryAdmin": 9002}}):
        r = ds.render(values)
        for wl in r.workloads():
            for c in ds.long_running_containers(wl):
                flag = int(ds.flag_values(c["args"])["admin-listen"].rsplit(":", 1)[1])
                assert flag in (9000, 9001, 9002)
                for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
                    port = ds.container_port(c, c[kind]["httpGet"]["port"])["containerPort"]
                    assert port == flag, (wl["metadata"]["name"], c["name"], kind)
