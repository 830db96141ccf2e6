"""Jaeger's own client libraries against Waymark's Jaeger endpoints:
jaeger-client (Python) over the agent's UDP compact port, read back through
the Jaeger API with every sent field compared."""

import json
import subprocess
import sys
import time
from pathlib import Path

import requests

CLIENTS = Path(__file__).parent / "clients"


def _wait_trace(waymark, trace_id, want):
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        r = requests.get(f"{waymark.query_url}/api/traces/{trace_id}", timeout=5)
        if r.status_code == 200 and len(r.json()["data"][0]["spans"]) >= want:
            return r.json()["data"][0]
        time.sleep(0.1)
    raise AssertionError(f"trace {trace_id} did not arrive: {r.status_code} {r.text[:300]}")


def _tags(span):
    return {t["key"]: (t["type"], t["value"]) for t in span["tags"]}


def test_python_jaeger_client_over_udp_compact(waymark):
    out = subprocess.run([sys.executable, str(CLIENTS / "jaeger_py.py"), "127.0.0.1",
                          str(waymark.jaeger_compact_port), "jaeger-py"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    sent = json.loads(out.stdout.strip().splitlines()[-1])
    trace = _wait_trace(waymark, sent["trace_id"], 2)
    assert trace["traceID"] == sent["trace_id"]
    got = {s["spanID"]: s for s in trace["spans"]}
    assert set(got) == {s["span_id"] for s in sent["spans"]}
    for s in sent["spans"]:
        g = got[s["span_id"]]
        assert g["operationName"] == s["name"]
        assert abs(g["startTime"] - s["start_us"]) <= 1
        assert abs(g["duration"] - s["duration_us"]) <= 1
        if s["parent_id"]:
            assert g["references"] == [{"refType": "CHILD_OF", "traceID": sent["trace_id"],
                                         "spanID": s["parent_id"]}]
        else:
            assert g["references"] == []
        assert trace["processes"][g["processID"]]["serviceName"] == "jaeger-py"
    root = got[sent["spans"][0]["span_id"]]
    child = got[sent["spans"][1]["span_id"]]
    rt = _tags(root)
    assert rt["span.kind"] == ("string", "server")
    assert rt["http.status_code"] == ("int64", 200)
    assert rt["ratio"] == ("float64", 0.5)
    assert rt["cache.hit"] == ("bool", True)
    assert rt["http.url"] == ("string", "/orders")
    ct = _tags(child)
    assert ct["span.kind"] == ("string", "client")
    assert ct["error"] == ("bool", True)
    fields = {f["key"]: f["value"] for f in child["logs"][0]["fields"]}
    assert fields == {"event": "retry", "attempt": 2}
    # The client's own process tags arrive as process tags.
    ptags = {t["key"] for t in trace["processes"][root["processID"]]["tags"]}
    assert {"jaeger.version", "hostname"} <= ptags, ptags
    # Searchable by the mapped fields.
    r = requests.get(f"{waymark.query_url}/api/traces", timeout=5,
                     params={"service": "jaeger-py", "tags": '{"error":"true"}', "lookback": "1h"})
    assert [t["traceID"] for t in r.json()["data"]] == [sent["trace_id"]]


def test_malformed_udp_packets_are_counted_not_fatal(waymark):
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for payload in (b"\x82\x21garbage", b"", b"\x00" * 100):
        s.sendto(payload, ("127.0.0.1", waymark.jaeger_compact_port))
    s.sendto(b"\x80\x01\x00\x04nonsense", ("127.0.0.1", waymark.jaeger_binary_port))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        text = requests.get(f"{waymark.admin_url}/metrics", timeout=5).text
        compact = [l for l in text.splitlines()
                   if l.startswith('waymark_malformed_requests_total{protocol="jaeger_udp_compact"}')]
        binary = [l for l in text.splitlines()
                  if l.startswith('waymark_malformed_requests_total{protocol="jaeger_udp_binary"}')]
        if compact and binary and float(compact[0].split()[-1]) >= 3:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("malformed packets not counted:\n" + text)
    assert requests.get(f"{waymark.admin_url}/ready", timeout=5).status_code == 200
