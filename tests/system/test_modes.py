"""Deployment-shaped behaviour of the binary: collector and query as two
processes over one data directory, admin endpoints and metrics, CORS for
browser SDKs, and configuration errors that name the bad key."""

import os
import pathlib
import subprocess
import time
import uuid

import requests

from waymark_sys import (WaymarkServer, binary_path, free_ports, json_request, json_span)


def _spawn(args, tmp_path, name):
    err = open(tmp_path / f"{name}.stderr", "wb")
    proc = subprocess.Popen([str(binary_path()), *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    return proc, tmp_path / f"{name}.stderr"


def _wait_ready(admin_port, proc, stderr_path, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"exited early: {stderr_path.read_text()[-2000:]}"
        try:
            if requests.get(f"http://127.0.0.1:{admin_port}/ready", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise AssertionError(f"not ready within {timeout}s: {stderr_path.read_text()[-2000:]}")


def _stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def _post_json(http_port, service, trace_hex, spans):
    body = json_request(service, spans)
    r = requests.post(f"http://127.0.0.1:{http_port}/v1/traces", json=body, timeout=10)
    assert r.status_code == 200, r.text
    return r


def test_collector_and_query_share_a_data_dir(tmp_path):
    data = tmp_path / "data"
    grpc, http, cquery, cadmin, qadmin, qquery = free_ports(6)
    # The query process starts first, on a directory no collector has
    # created yet: it waits, alive but not ready, instead of exiting.
    query, qerr = _spawn(["query", "--data-dir", str(data),
                          "--query-listen", f"127.0.0.1:{qquery}",
                          "--admin-listen", f"127.0.0.1:{qadmin}",
                          "--query-grpc-listen", "127.0.0.1:0"], tmp_path, "query")
    deadline = time.monotonic() + 10
    while True:
        assert query.poll() is None, qerr.read_text()[-2000:]
        try:
            if requests.get(f"http://127.0.0.1:{qadmin}/health", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            assert time.monotonic() < deadline, "query admin port never came up"
            time.sleep(0.05)
    time.sleep(1.0)
    r = requests.get(f"http://127.0.0.1:{qadmin}/ready", timeout=2)
    assert r.status_code == 503 and "waiting for a collector" in r.text, r.text
    assert query.poll() is None
    collector, cerr = _spawn(["collector", "--data-dir", str(data),
                              "--otlp-grpc-listen", f"127.0.0.1:{grpc}",
                              "--otlp-http-listen", f"127.0.0.1:{http}",
                              "--query-listen", f"127.0.0.1:{cquery}",
                              "--admin-listen", f"127.0.0.1:{cadmin}",
                              "--zipkin-listen", "127.0.0.1:0",
                              "--jaeger-compact-listen", "127.0.0.1:0",
                              "--jaeger-binary-listen", "127.0.0.1:0",
                              "--jaeger-http-listen", "127.0.0.1:0",
                              "--sampling-listen", "127.0.0.1:0",
                              "--jaeger-grpc-listen", "127.0.0.1:0",
                              "--query-grpc-listen", "127.0.0.1:0"], tmp_path, "collector")
    try:
        _wait_ready(cadmin, collector, cerr)
        # A collector serves no query API.
        try:
            requests.get(f"http://127.0.0.1:{cquery}/api/services", timeout=1)
            raise AssertionError("collector must not serve the query API")
        except requests.ConnectionError:
            pass
        trace = uuid.uuid4().hex
        now = time.time_ns()
        _post_json(http, "split-mode", trace, [
            json_span(trace, "00000000000000a1", "root", start_ns=now, duration_ns=5_000_000),
            json_span(trace, "00000000000000a2", "child", parent_hex="00000000000000a1",
                      start_ns=now + 1000, duration_ns=1_000_000),
        ])
        _wait_ready(qadmin, query, qerr)
        # Spans written before and after the query process started appear.
        trace2 = uuid.uuid4().hex
        _post_json(http, "split-mode", trace2, [
            json_span(trace2, "00000000000000b1", "later", start_ns=now, duration_ns=1_000)])
        deadline = time.monotonic() + 15
        found = set()
        while time.monotonic() < deadline and len(found) < 2:
            for t in (trace, trace2):
                r = requests.get(f"http://127.0.0.1:{qquery}/api/traces/{t}", timeout=5)
                if r.status_code == 200:
                    found.add(t)
            time.sleep(0.2)
        assert found == {trace, trace2}, f"query process saw {found}"
        r = requests.get(f"http://127.0.0.1:{qquery}/api/traces/{trace}", timeout=5)
        assert len(r.json()["data"][0]["spans"]) == 2
        # The read-only process must not have changed the collector's files.
        assert collector.poll() is None
    finally:
        _stop(query)
        _stop(collector)


def test_metrics_health_and_ready(make_server):
    srv = make_server()
    srv.start()
    assert requests.get(srv.admin_url + "/health", timeout=5).status_code == 200
    assert requests.get(srv.admin_url + "/ready", timeout=5).text.strip() == "ready"
    trace = uuid.uuid4().hex
    now = time.time_ns()
    requests.post(srv.otlp_http_url + "/v1/traces", timeout=10, json=json_request("metered", [
        json_span(trace, "0000000000000001", "a", start_ns=now, duration_ns=10),
        json_span(trace, "0000000000000002", "b", start_ns=now, duration_ns=10),
        json_span("zz", "0000000000000003", "bad", start_ns=now, duration_ns=10),
    ])).raise_for_status()
    requests.get(srv.query_url + f"/api/traces/{trace}", timeout=5).raise_for_status()
    text = requests.get(srv.admin_url + "/metrics", timeout=5).text

    def value(line_prefix):
        for line in text.splitlines():
            if line.startswith(line_prefix):
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"{line_prefix!r} not in /metrics:\n{text}")

    assert value('waymark_spans_received_total{protocol="otlp_http"}') == 3
    assert value('waymark_spans_rejected_total{protocol="otlp_http"}') == 1
    assert value('waymark_spans_stored_total{protocol="otlp_http"}') == 2
    assert value("waymark_ingest_queue_spans") == 0
    assert value("waymark_head_spans") == 2
    assert value("waymark_wal_bytes") > 0
    assert value('waymark_query_duration_seconds_count{endpoint="trace_by_id"}') >= 1


def test_cors_preflight_only_for_allowed_origins(make_server):
    srv = make_server(extra_args=["--cors-allowed-origins", "https://shop.example"])
    srv.start()
    pre = {"Origin": "https://shop.example", "Access-Control-Request-Method": "POST",
           "Access-Control-Request-Headers": "content-type"}
    r = requests.options(srv.otlp_http_url + "/v1/traces", headers=pre, timeout=5)
    assert r.status_code == 200
    assert r.headers.get("access-control-allow-origin") == "https://shop.example"
    other = dict(pre, Origin="https://evil.example")
    r = requests.options(srv.otlp_http_url + "/v1/traces", headers=other, timeout=5)
    assert r.headers.get("access-control-allow-origin") is None

    plain = make_server()
    plain.start()
    r = requests.options(plain.otlp_http_url + "/v1/traces", headers=pre, timeout=5)
    assert r.headers.get("access-control-allow-origin") is None


def test_unknown_config_key_is_named(tmp_path):
    cfg = tmp_path / "waymark.yaml"
    cfg.write_text("storage:\n  fsync: batch\n  retension: 3d\n")
    ports = free_ports(4)
    r = subprocess.run([str(binary_path()), "--config", str(cfg), "--data-dir", str(tmp_path / "d"),
                        "--otlp-grpc-listen", f"127.0.0.1:{ports[0]}",
                        "--otlp-http-listen", f"127.0.0.1:{ports[1]}",
                        "--query-listen", f"127.0.0.1:{ports[2]}",
                        "--admin-listen", f"127.0.0.1:{ports[3]}",
                        "--zipkin-listen", "127.0.0.1:0",
                        "--jaeger-compact-listen", "127.0.0.1:0",
                        "--jaeger-binary-listen", "127.0.0.1:0",
                        "--jaeger-http-listen", "127.0.0.1:0",
                        "--sampling-listen", "127.0.0.1:0",
                        "--jaeger-grpc-listen", "127.0.0.1:0",
                        "--query-grpc-listen", "127.0.0.1:0"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "retension" in r.stderr, r.stderr


def test_environment_overrides(tmp_path):
    ports = free_ports(4)
    env = dict(os.environ, WAYMARK_DATA_DIR=str(tmp_path / "from-env"),
               WAYMARK_OTLP_GRPC_LISTEN=f"127.0.0.1:{ports[0]}",
               WAYMARK_OTLP_HTTP_LISTEN=f"127.0.0.1:{ports[1]}",
               WAYMARK_QUERY_LISTEN=f"127.0.0.1:{ports[2]}",
               WAYMARK_ADMIN_LISTEN=f"127.0.0.1:{ports[3]}",
               WAYMARK_ZIPKIN_LISTEN="127.0.0.1:0",
               WAYMARK_JAEGER_COMPACT_LISTEN="127.0.0.1:0",
               WAYMARK_JAEGER_BINARY_LISTEN="127.0.0.1:0",
               WAYMARK_JAEGER_HTTP_LISTEN="127.0.0.1:0",
               WAYMARK_SAMPLING_LISTEN="127.0.0.1:0",
               WAYMARK_JAEGER_GRPC_LISTEN="127.0.0.1:0",
               WAYMARK_QUERY_GRPC_LISTEN="127.0.0.1:0")
    err = open(tmp_path / "env.stderr", "wb")
    proc = subprocess.Popen([str(binary_path())], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    try:
        _wait_ready(ports[3], proc, tmp_path / "env.stderr")
        assert (tmp_path / "from-env" / "wal").is_dir()
    finally:
        _stop(proc)


def test_dockerfile_runs_what_we_test(make_server, tmp_path):
    """No container engine runs here, so check what the image would run:
    a non-root user, the waymark entrypoint, and a HEALTHCHECK command that
    really passes against a running server (admin port substituted)."""
    import json as _json
    import re

    text = (pathlib.Path(__file__).parents[2] / "Dockerfile").read_text()
    assert re.search(r"^USER 10001", text, re.M), "runs as a non-root user"
    assert 'ENTRYPOINT ["/usr/local/bin/waymark"]' in text
    assert "ENV WAYMARK_DATA_DIR=/var/lib/waymark" in text
    assert "HEALTHCHECK" in text
    hc = re.search(r"^\s*CMD (\[.*\])$", text, re.M).group(1)
    argv = _json.loads(hc)
    srv = make_server()
    srv.start()
    argv = [a.replace("14269", str(srv.admin_port)) for a in argv]
    assert subprocess.run(argv, timeout=10).returncode == 0, argv
    srv.stop()
    assert subprocess.run(argv, timeout=10).returncode != 0, "fails when the server is down"
