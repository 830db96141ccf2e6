"""The Elasticsearch backend wired into the binary, against a stand-in
cluster (a small HTTP server answering as Elasticsearch 8's REST API
documents: `GET /`, templates, `_bulk`, `_search` aggregations). No real
cluster runs here; crates/elasticsearch/tests/live.rs runs against one when
WAYMARK_TEST_ES_URL is set. Checks what the unit-level contract tests
cannot: flags reach the backend, spans from a receiver arrive as Jaeger
documents in the right index, the query API reads through it, and a
cluster that is not up yet keeps the process alive and not ready."""

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from waymark_sys import free_ports, json_request, json_span


class StandIn:
    def __init__(self, port):
        self.docs = []  # (index, id, doc)
        self.requests = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _body(self):
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def _send(self, status, obj):
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                outer.requests.append(("GET", self.path, self.headers.get("Authorization")))
                if self.path == "/":
                    return self._send(200, {"version": {"number": "8.15.2"}, "tagline": "You Know, for Search"})
                self._send(404, {"error": {"type": "not_found", "reason": self.path}})

            def do_PUT(self):
                self._body()
                outer.requests.append(("PUT", self.path, None))
                self._send(200, {"acknowledged": True})

            def do_POST(self):
                body = self._body()
                outer.requests.append(("POST", self.path, None))
                if self.path.startswith("/_bulk"):
                    lines = [json.loads(l) for l in body.decode().splitlines() if l.strip()]
                    items = []
                    for action, doc in zip(lines[::2], lines[1::2]):
                        meta = action["index"]
                        outer.docs.append((meta["_index"], meta["_id"], doc))
                        items.append({"index": {"_index": meta["_index"], "_id": meta["_id"], "status": 201}})
                    return self._send(200, {"took": 1, "errors": False, "items": items})
                if "/_search" in self.path:
                    q = json.loads(body or b"{}")
                    aggs = q.get("aggs", {})
                    if "services" in aggs:
                        names = sorted({d["serviceName"] for i, _, d in outer.docs if "-service-" in i})
                        return self._send(200, {"hits": {"hits": []}, "aggregations": {"services": {"buckets": [{"key": n, "doc_count": 1} for n in names]}}})
                    return self._send(200, {"hits": {"total": {"value": 0}, "hits": []}})
                self._send(404, {"error": {"type": "not_found", "reason": self.path}})

        self.server = ThreadingHTTPServer(("127.0.0.1", port), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_spans_reach_the_cluster_as_jaeger_documents(make_server, tmp_path):
    es_port, = free_ports(1)
    password = tmp_path / "password"
    password.write_text("changeme\n")
    srv = make_server(extra_args=["--storage-backend", "elasticsearch",
                                  "--es-urls", f"http://127.0.0.1:{es_port}",
                                  "--es-username", "elastic", "--es-password-file", str(password),
                                  "--es-index-prefix", "tenant1"])
    # The cluster is not up yet: the process waits, alive and not ready.
    srv.start(wait=False)
    time.sleep(1.5)
    assert srv.alive(), srv.stderr_tail()
    r = requests.get(srv.admin_url + "/ready", timeout=2)
    assert r.status_code == 503, r.text
    assert "elasticsearch not available yet" in srv.stderr_tail()

    es = StandIn(es_port)
    try:
        srv.wait_ready(timeout=30)
        assert ("GET", "/", "Basic ZWxhc3RpYzpjaGFuZ2VtZQ==") in es.requests
        assert any(m == "PUT" and p == "/_index_template/tenant1-jaeger-span" for m, p, _ in es.requests)

        trace = uuid.uuid4().hex
        now = time.time_ns()
        body = json_request("checkout", [json_span(trace, "00000000000000a1", "GET /cart",
                                                   start_ns=now, duration_ns=2_000_000)])
        r = requests.post(f"{srv.otlp_http_url}/v1/traces", json=body, timeout=10)
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any("-span-" in i for i, _, _ in es.docs):
            time.sleep(0.05)
        spans = [(i, d) for i, _, d in es.docs if "-span-" in i]
        assert len(spans) == 1, es.docs
        index, doc = spans[0]
        day = time.strftime("%Y-%m-%d", time.gmtime(now / 1e9))
        assert index == f"tenant1-jaeger-span-{day}"
        assert doc["traceID"] == trace and doc["spanID"] == "00000000000000a1"
        assert doc["operationName"] == "GET /cart"
        assert doc["startTime"] == now // 1000 and doc["duration"] == 2000
        assert doc["process"]["serviceName"] == "checkout"
        services = [d for i, _, d in es.docs if i == f"tenant1-jaeger-service-{day}"]
        assert services == [{"serviceName": "checkout", "operationName": "GET /cart"}]

        # The query API reads through the backend.
        r = requests.get(srv.query_url + "/api/services", timeout=10)
        assert r.status_code == 200, r.text
        assert r.json()["data"] == ["checkout"]
        m = requests.get(srv.admin_url + "/metrics", timeout=5).text
        assert 'waymark_spans_stored_total{protocol="otlp_http"} 1' in m
    finally:
        srv.stop()
        es.close()


def test_wrong_credentials_stop_start_up_with_the_reason(make_server):
    es_port, = free_ports(1)

    class Deny(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            data = json.dumps({"error": {"type": "security_exception", "reason": "unable to authenticate user [elastic]"}, "status": 401}).encode()
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", es_port), Deny)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        srv = make_server(extra_args=["--storage-backend", "elasticsearch",
                                      "--es-urls", f"http://127.0.0.1:{es_port}",
                                      "--es-username", "elastic", "--es-password", "wrong"])
        srv.start(wait=False)
        deadline = time.monotonic() + 20
        while srv.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not srv.alive(), "a 401 is not something to wait out"
        err = srv.stderr_tail()
        assert "401" in err and "credentials" in err and "security_exception" in err, err
    finally:
        server.shutdown()
        server.server_close()
