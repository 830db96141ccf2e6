"""Jaeger's official Node client (npm `jaeger-client`) against Waymark's Jaeger
endpoints: its UDPSender on the agent's Thrift-binary UDP port and its
HTTPSender on the collector's `POST /api/traces`.  The client script
(clients/jaeger_node.mjs) prints the Thrift spans it handed to the sender;
every field is compared with what `GET /api/traces/{id}` returns."""

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests

E2E_DIR = Path(__file__).resolve().parent
SCRIPT = E2E_DIR / "clients" / "jaeger_node.mjs"


def _run_client(argv: list[str]) -> dict:
    if shutil.which("node") is None:
        pytest.fail("node is not installed", pytrace=False)
    if not (E2E_DIR / "node_modules" / "jaeger-client").is_dir():
        pytest.fail("tests/e2e/node_modules lacks jaeger-client: run `npm ci` in tests/e2e", pytrace=False)
    out = subprocess.run(["node", str(SCRIPT), *argv], cwd=E2E_DIR, capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, f"client failed ({out.returncode}):\n{out.stderr}\n{out.stdout}"
    return json.loads(out.stdout.strip().splitlines()[-1])


def _wait_trace(waymark, trace_id: str, want: int) -> dict:
    deadline = time.monotonic() + 15
    last = "no answer"
    while time.monotonic() < deadline:
        r = requests.get(f"{waymark.query_url}/api/traces/{trace_id}", timeout=5)
        last = f"{r.status_code} {r.text[:300]}"
        if r.status_code == 200 and len(r.json()["data"][0]["spans"]) >= want:
            return r.json()["data"][0]
        time.sleep(0.1)
    raise AssertionError(f"trace {trace_id} did not arrive within 15 s: {last}")


def _tag_map(tags: list[dict]) -> dict:
    out = {}
    for t in tags:
        assert t["key"] not in out, f"duplicate tag {t['key']!r} in {tags}"
        out[t["key"]] = (t["type"], t["value"])
    return out


def _expected_tags(sent_tags: list[dict]) -> dict:
    want = _tag_map(sent_tags)
    # An `error`=true tag is read as the span's error status; the Jaeger API
    # renders that status as `error`=true plus `otel.status_code`=ERROR (as
    # Jaeger v2 does for every span with an error status).
    if want.get("error") == ("bool", True):
        want["otel.status_code"] = ("string", "ERROR")
    return want


def _check_trace(waymark, sent: dict, service: str) -> dict:
    trace_id = sent["trace_id"]
    trace = _wait_trace(waymark, trace_id, len(sent["spans"]))
    assert trace["traceID"] == trace_id
    got = {s["spanID"]: s for s in trace["spans"]}
    assert sorted(got) == sorted(s["span_id"] for s in sent["spans"])

    for s in sent["spans"]:
        g = got[s["span_id"]]
        where = f"span {s['name']!r} ({s['span_id']})"
        assert g["traceID"] == s["trace_id"] == trace_id, where
        assert g["operationName"] == s["name"], where
        assert g["startTime"] == s["start_us"], where
        assert g["duration"] == s["duration_us"], where
        assert g.get("flags") == s["flags"], where
        assert g.get("warnings") is None, (where, g.get("warnings"))

        # Parent: parentSpanId and any CHILD_OF reference to the same span
        # come back as one CHILD_OF reference.
        want_refs = []
        if s["parent_id"]:
            want_refs.append({"refType": "CHILD_OF", "traceID": trace_id, "spanID": s["parent_id"]})
        for r in s["references"]:
            if r not in want_refs:
                want_refs.append(r)
        assert g["references"] == want_refs, where

        assert _tag_map(g["tags"]) == _expected_tags(s["tags"]), where

        assert len(g["logs"]) == len(s["logs"]), where
        for gl, sl in zip(g["logs"], s["logs"]):
            assert gl["timestamp"] == sl["timestamp_us"], where
            event = [f for f in sl["fields"] if f["key"] == "event"]
            others = [f for f in sl["fields"] if f["key"] != "event"]
            assert gl["fields"] == event + others, where

        proc = trace["processes"][g["processID"]]
        assert proc["serviceName"] == service == sent["process"]["serviceName"], where
        assert _tag_map(proc["tags"]) == _tag_map(sent["process"]["tags"]), where
    return trace


def _search(waymark, service: str) -> list[str]:
    r = requests.get(f"{waymark.query_url}/api/traces", timeout=5,
                     params={"service": service, "tags": '{"error":"true"}', "lookback": "1h"})
    assert r.status_code == 200, r.text
    return [t["traceID"] for t in r.json()["data"]]


def test_node_jaeger_client_udp_sender_thrift_binary(waymark):
    service = "jaeger-node-udp"
    sent = _run_client(["udp", "127.0.0.1", str(waymark.jaeger_binary_port), service])
    assert len(sent["trace_id"]) == 16, "64-bit trace id expected from the udp run"
    assert len(sent["spans"]) == 2
    _check_trace(waymark, sent, service)
    assert _search(waymark, service) == [sent["trace_id"]]


def test_node_jaeger_client_http_sender(waymark):
    service = "jaeger-node-http"
    sent = _run_client(["http", f"http://127.0.0.1:{waymark.jaeger_http_port}/api/traces", service])
    assert len(sent["trace_id"]) == 32, "128-bit trace id expected from the http run"
    assert len(sent["spans"]) == 2
    _check_trace(waymark, sent, service)
    assert _search(waymark, service) == [sent["trace_id"]]
