"""Jaeger's collector gRPC endpoint (14250) with a real client: the
OpenTelemetry Python SDK's Jaeger exporter (PostSpans). The exporter lives
in its own virtualenv (WAYMARK_JAEGER_EXPORTER_PYTHON, made by .ci/run)
because its last release pins older protobuf support packages."""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import requests

CLIENT = Path(__file__).parent / "clients" / "otel_jaeger_grpc.py"
PYTHON = os.environ.get("WAYMARK_JAEGER_EXPORTER_PYTHON")


@pytest.mark.skipif(not PYTHON, reason="WAYMARK_JAEGER_EXPORTER_PYTHON is not set (.ci/run sets it)")
def test_otel_jaeger_exporter_over_grpc(waymark):
    out = subprocess.run([PYTHON, str(CLIENT), f"127.0.0.1:{waymark.jaeger_grpc_port}"],
                         capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION="python"))
    assert out.returncode == 0, out.stderr
    sent = json.loads(out.stdout.strip().splitlines()[-1])
    deadline = time.monotonic() + 15
    while True:
        r = requests.get(f"{waymark.query_url}/api/traces/{sent['trace_id']}", timeout=5)
        if r.status_code == 200 and len(r.json()["data"][0]["spans"]) == 2:
            break
        assert time.monotonic() < deadline, f"trace did not arrive: {r.status_code} {r.text[:300]}"
        time.sleep(0.1)
    trace = r.json()["data"][0]
    got = {s["spanID"]: s for s in trace["spans"]}
    assert set(got) == {s["span_id"] for s in sent["spans"]}
    for s in sent["spans"]:
        g = got[s["span_id"]]
        assert g["operationName"] == s["name"]
        assert abs(g["startTime"] - s["start_us"]) <= 1
        assert abs(g["duration"] - s["duration_us"]) <= 1
        refs = [r["spanID"] for r in g["references"] if r["refType"] == "CHILD_OF"]
        assert refs == ([s["parent_id"]] if s["parent_id"] else [])
    root = got[sent["spans"][0]["span_id"]]
    child = got[sent["spans"][1]["span_id"]]
    proc = trace["processes"][root["processID"]]
    assert proc["serviceName"] == "otel-jaeger-grpc"
    assert {t["key"]: t["value"] for t in proc["tags"]}["deployment.environment"] == "e2e"
    rt = {t["key"]: (t["type"], t["value"]) for t in root["tags"]}
    assert rt["http.method"] == ("string", "POST")
    assert rt["retries"] == ("int64", 2)
    assert rt["ratio"] == ("float64", 0.75)
    assert rt["cached"] == ("bool", False)
    assert rt["span.kind"] == ("string", "server")
    assert rt["otel.scope.name"] == ("string", "e2e.jaeger")
    ct = {t["key"]: (t["type"], t["value"]) for t in child["tags"]}
    assert ct["span.kind"] == ("string", "client")
    assert ct["error"] == ("bool", True)
    assert ct["otel.status_description"] == ("string", "card declined")
    # This exporter names the event in a "message" field, not "event".
    fields = {f["key"]: f["value"] for f in child["logs"][0]["fields"]}
    assert fields == {"message": "declined", "code": "51"}
