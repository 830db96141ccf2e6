"""Zipkin's JS tracer (npm `zipkin`) and its HTTP transport (npm
`zipkin-transport-http`) posting Zipkin v2 JSON to Waymark's
`/api/v2/spans`.  The client script (clients/zipkin_node.mjs) prints the exact
span list it posted; every span is compared with what `GET /api/traces/{id}`
returns, through the Zipkin -> Jaeger mapping: local endpoint service as the
process (its ipv4 as the `ip` process tag), kind as `span.kind`, tags as
string tags, the `error` tag as the error status, the remote endpoint as
`peer.*` tags, annotations as logs holding one `event` field."""

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests

E2E_DIR = Path(__file__).resolve().parent
SCRIPT = E2E_DIR / "clients" / "zipkin_node.mjs"
SERVICE = "zipkin-js"


def _run_client(endpoint: str) -> dict:
    if shutil.which("node") is None:
        pytest.fail("node is not installed", pytrace=False)
    if not (E2E_DIR / "node_modules" / "zipkin-transport-http").is_dir():
        pytest.fail("tests/e2e/node_modules lacks zipkin-transport-http: run `npm ci` in tests/e2e",
                    pytrace=False)
    out = subprocess.run(["node", str(SCRIPT), endpoint, SERVICE], cwd=E2E_DIR,
                         capture_output=True, text=True, timeout=30)
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


def _jaeger_trace_id(zipkin_id: str) -> str:
    tid = zipkin_id.lower().rjust(32, "0")
    return tid[16:] if int(tid[:16], 16) == 0 else tid


def _tag_map(tags: list[dict]) -> dict:
    out = {}
    for t in tags:
        assert t["key"] not in out, f"duplicate tag {t['key']!r} in {tags}"
        out[t["key"]] = (t["type"], t["value"])
    return out


def _expected_tags(z: dict) -> dict:
    want = {}
    if z.get("kind"):
        want["span.kind"] = ("string", z["kind"].lower())
    for k, v in z.get("tags", {}).items():
        if k == "error":
            # The error status, rendered as Jaeger v2 renders it.
            want["error"] = ("bool", True)
            want["otel.status_code"] = ("string", "ERROR")
            if v not in ("", "true"):
                want["otel.status_description"] = ("string", v)
        else:
            want[k] = ("string", v)
    remote = z.get("remoteEndpoint") or {}
    if remote.get("serviceName"):
        want["peer.service"] = ("string", remote["serviceName"])
    if remote.get("ipv4"):
        want["peer.ipv4"] = ("string", remote["ipv4"])
    if remote.get("ipv6"):
        want["peer.ipv6"] = ("string", remote["ipv6"])
    if remote.get("port"):
        want["peer.port"] = ("int64", remote["port"])
    return want


def test_zipkin_js_http_logger_v2_json(waymark):
    endpoint = f"http://127.0.0.1:{waymark.zipkin_port}/api/v2/spans"
    sent = _run_client(endpoint)
    assert sent["url"] == endpoint
    assert sent["status"] == 202
    spans = sent["spans"]
    assert len(spans) == 3
    assert all(s["traceId"] == sent["trace_id"] for s in spans)
    trace_id = _jaeger_trace_id(sent["trace_id"])

    trace = _wait_trace(waymark, trace_id, len(spans))
    assert trace["traceID"] == trace_id
    got = {s["spanID"]: s for s in trace["spans"]}
    assert sorted(got) == sorted(s["id"] for s in spans)

    for z in spans:
        g = got[z["id"]]
        where = f"span {z.get('name')!r} ({z['id']})"
        assert g["traceID"] == trace_id, where
        assert g["operationName"] == z.get("name", ""), where
        assert g["startTime"] == z["timestamp"], where
        assert g["duration"] == z["duration"], where
        assert g.get("flags") == 1, where  # sampled; not debug
        assert g.get("warnings") is None, (where, g.get("warnings"))
        want_refs = ([{"refType": "CHILD_OF", "traceID": trace_id, "spanID": z["parentId"]}]
                     if z.get("parentId") else [])
        assert g["references"] == want_refs, where
        assert _tag_map(g["tags"]) == _expected_tags(z), where
        want_logs = [{"timestamp": a["timestamp"],
                      "fields": [{"key": "event", "type": "string", "value": a["value"]}]}
                     for a in z.get("annotations", [])]
        assert g["logs"] == want_logs, where
        proc = trace["processes"][g["processID"]]
        local = z["localEndpoint"]
        assert proc["serviceName"] == local["serviceName"] == SERVICE, where
        want_ptags = {"ip": ("string", local["ipv4"])} if local.get("ipv4") else {}
        assert _tag_map(proc["tags"]) == want_ptags, where

    # The scenario itself: a server root, a client child with an error and an
    # annotation, a local child.
    kinds = sorted(z.get("kind", "") for z in spans)
    assert kinds == ["", "CLIENT", "SERVER"]
    r = requests.get(f"{waymark.query_url}/api/traces", timeout=5,
                     params={"service": SERVICE, "tags": '{"error":"true"}', "lookback": "1h"})
    assert r.status_code == 200, r.text
    assert [t["traceID"] for t in r.json()["data"]] == [trace_id]
