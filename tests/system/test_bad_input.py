"""Bad input gets a precise error, and stored data stays intact.

One server (started with --max-request-bytes 1048576) serves the whole module.
A known good trace is stored first; every bad-input case is its own test; the
last tests check that the good trace is unchanged and new data is accepted.
Tests run in file order (the final checks are defined last).
"""

from __future__ import annotations

import gzip
import json
import os
import re
import time
import zlib

import grpc
import pytest
import requests
from google.rpc import status_pb2

from waymark_sys import (EXPORT_METHOD, ExportTraceServiceRequest, ExportTraceServiceResponse,
                         get_trace, jaeger_span_ids, json_request, json_span, pb_request,
                         pb_span, post_protobuf, wait_for_spans)

MAX_REQUEST_BYTES = 1048576
GOOD_TRACE_ID = "5a7e0000000000000000000000000001"
GOOD_SPANS = ["5a7e000000000001", "5a7e000000000002", "5a7e000000000003"]
PROTO = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}


# --------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def srv(module_server_factory):
    s = module_server_factory(extra_args=["--max-request-bytes", str(MAX_REQUEST_BYTES)])
    s.start()
    return s


@pytest.fixture(scope="module")
def http():
    with requests.Session() as s:
        yield s


def _normalize_trace(body: dict) -> list:
    """Comparable view of a Jaeger trace: spans sorted by id with the fields
    that must never change, plus the service name of each span."""
    assert isinstance(body.get("data"), list) and len(body["data"]) == 1, body
    trace = body["data"][0]
    procs = trace.get("processes") or {}
    out = []
    for sp in trace["spans"]:
        out.append((
            sp["spanID"], sp.get("traceID"), sp.get("operationName"), sp.get("startTime"),
            sp.get("duration"),
            json.dumps(sorted((r.get("refType"), r.get("spanID")) for r in sp.get("references") or [])),
            json.dumps(sorted((t.get("key"), str(t.get("value"))) for t in sp.get("tags") or [])),
            (procs.get(sp.get("processID")) or {}).get("serviceName"),
        ))
    return sorted(out)


@pytest.fixture(scope="module")
def good_trace(srv, http):
    start = 1_700_000_000_000_000_000
    spans = [
        json_span(GOOD_TRACE_ID, GOOD_SPANS[0], "GET /checkout", start_ns=start, duration_ns=9_000_000,
                  attrs={"http.method": "GET", "http.status_code": 200}, kind=2),
        json_span(GOOD_TRACE_ID, GOOD_SPANS[1], "db.query", parent_hex=GOOD_SPANS[0],
                  start_ns=start + 1_000_000, duration_ns=3_000_000, attrs={"db.system": "postgresql"}, kind=3),
        json_span(GOOD_TRACE_ID, GOOD_SPANS[2], "render", parent_hex=GOOD_SPANS[0],
                  start_ns=start + 5_000_000, duration_ns=2_000_000, attrs={"cached": True}),
    ]
    r = http.post(srv.otlp_http_url + "/v1/traces", data=json.dumps(json_request("good-svc", spans)),
                  headers=JSON, timeout=10)
    assert r.status_code == 200, f"storing the good trace failed: HTTP {r.status_code} {r.text!r}"
    status, body, found = wait_for_spans(http, srv, GOOD_TRACE_ID, {int(s, 16) for s in GOOD_SPANS})
    assert status == 200 and found == {int(s, 16) for s in GOOD_SPANS}, \
        f"good trace not readable after store: HTTP {status} {body!r}"
    return _normalize_trace(body)


@pytest.fixture(scope="module", autouse=True)
def _store_good_trace_first(good_trace):
    """The good trace is stored before any bad input is sent."""
    return good_trace


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def otlp_error_message(resp: requests.Response) -> str:
    """Message of an OTLP/HTTP error body: a google.rpc.Status in protobuf or
    JSON form (per the OTLP/HTTP spec), or plain text."""
    ctype = resp.headers.get("Content-Type", "")
    if "protobuf" in ctype:
        try:
            return status_pb2.Status.FromString(resp.content).message
        except Exception:  # noqa: BLE001
            return f"<undecodable protobuf Status: {resp.content[:200]!r}>"
    if "json" in ctype:
        try:
            body = resp.json()
        except ValueError:
            return resp.text
        if isinstance(body, dict):
            for key in ("message", "error", "msg"):
                if isinstance(body.get(key), str):
                    return body[key]
        return json.dumps(body)
    return resp.text


def assert_otlp_error(resp: requests.Response, status: int, pattern: str):
    msg = otlp_error_message(resp)
    assert resp.status_code == status, (
        f"expected HTTP {status}, got {resp.status_code} "
        f"(Content-Type {resp.headers.get('Content-Type')!r}, message {msg!r}, body {resp.content[:300]!r})")
    assert re.search(pattern, msg, re.I), \
        f"HTTP {status} OK, but message {msg!r} does not name the problem (expected /{pattern}/i)"


def valid_pb_body(n_spans: int = 3, pad: int = 0) -> bytes:
    tid = os.urandom(16)
    spans = [pb_span(tid, os.urandom(8), f"s{i}", start_ns=time.time_ns(), duration_ns=1000,
                     attrs={"pad": "p" * pad} if pad else None) for i in range(n_spans)]
    return pb_request("bad-input-svc", spans).SerializeToString()


def gzip_zeros(total_bytes: int) -> bytes:
    """gzip of total_bytes zero bytes, built chunk by chunk (never held inflated)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    parts = []
    full, rest = divmod(total_bytes, len(chunk))
    for _ in range(full):
        parts.append(comp.compress(chunk))
    parts.append(comp.compress(bytes(rest)))
    parts.append(comp.flush())
    return b"".join(parts)


def query_error(resp: requests.Response, status: int, pattern: str | None):
    """Jaeger envelope: {"data":null,"errors":[{"code":status,"msg":...}]}."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    assert resp.status_code == status, f"expected HTTP {status}, got {resp.status_code}: {resp.text[:300]!r}"
    assert isinstance(body, dict), f"body is not a JSON object: {resp.text[:300]!r}"
    assert "data" in body and body["data"] is None, f"expected \"data\": null, body {body!r}"
    errs = body.get("errors")
    assert isinstance(errs, list) and errs, f"expected non-empty \"errors\" list, body {body!r}"
    assert errs[0].get("code") == status, f"expected errors[0].code == {status}, body {body!r}"
    msg = errs[0].get("msg")
    assert isinstance(msg, str) and msg, f"expected errors[0].msg string, body {body!r}"
    if pattern is not None:
        assert re.search(pattern, msg, re.I), f"msg {msg!r} does not name the problem (expected /{pattern}/i)"
    return msg


# --------------------------------------------------------------------------
# OTLP/HTTP
# --------------------------------------------------------------------------

def _truncated_pb() -> bytes:
    body = valid_pb_body(5)
    bad = body[: len(body) // 2]
    with pytest.raises(Exception):
        ExportTraceServiceRequest.FromString(bad)  # make sure it really is invalid
    return bad


GARBAGE = b"\xff" * 12 + b"definitely not a protobuf message \x00\x01\x02"

HTTP_BAD_CASES = {
    # id: (body factory, headers, expected status, message pattern)
    "truncated-protobuf": (_truncated_pb, PROTO, 400, r"protobuf|decod"),
    "garbage-protobuf": (lambda: GARBAGE, PROTO, 400, r"protobuf|decod"),
    "invalid-json": (lambda: b'{"resourceSpans": [ {"scopeSpans": [', JSON, 400, r"json"),
    "text-plain": (lambda: b"hello", {"Content-Type": "text/plain"}, 415,
                   r"content.?type|media.?type|unsupported"),
    "body-over-limit": (lambda: valid_pb_body(1, pad=2 * 1024 * 1024), PROTO, 413,
                        r"too large|limit|exceed|size"),
    "gzip-not-gzip": (lambda: valid_pb_body(3), {**PROTO, "Content-Encoding": "gzip"}, 400,
                      r"gzip|decompress|compress|encoding"),
}


@pytest.mark.parametrize("case", list(HTTP_BAD_CASES))
def test_otlp_http_rejects(srv, http, case):
    factory, headers, status, pattern = HTTP_BAD_CASES[case]
    body = factory()
    r = http.post(srv.otlp_http_url + "/v1/traces", data=body, headers=headers, timeout=30)
    assert_otlp_error(r, status, pattern)


@pytest.mark.parametrize("label,inflated_bytes", [
    # Deflate cannot exceed ~1032:1, so "~50 KiB that inflates to > 1 GiB" is
    # impossible in one gzip layer. Two bombs instead: ~50 KiB -> 50 MiB, and
    # ~1.0 MB (just under the 1 MiB request limit) -> 1 GiB + 1 MiB.
    ("50KiB-to-50MiB", 50 << 20),
    ("1MB-to-1GiB", (1 << 30) + (1 << 20)),
])
def test_otlp_http_gzip_bomb(srv, http, label, inflated_bytes):
    bomb = gzip_zeros(inflated_bytes)
    assert len(bomb) < MAX_REQUEST_BYTES, f"bomb is {len(bomb)} bytes compressed, must fit the limit"
    print(f"\n[bomb] {label}: {len(bomb)} bytes compressed -> {inflated_bytes} bytes inflated")
    rss_before = srv.rss_bytes()
    r = http.post(srv.otlp_http_url + "/v1/traces", data=bomb,
                  headers={**PROTO, "Content-Encoding": "gzip"}, timeout=60)
    assert srv.alive(), "server died on the gzip bomb"
    peak = srv.peak_rss_bytes()
    print(f"[bomb] RSS before {rss_before >> 20} MiB, peak (VmHWM) {peak >> 20} MiB, "
          f"now {srv.rss_bytes() >> 20} MiB")
    assert_otlp_error(r, 413, r"too large|limit|exceed|size")
    assert peak < rss_before + (256 << 20), \
        f"peak RSS {peak >> 20} MiB vs {rss_before >> 20} MiB before the bomb: the body was inflated in memory"
    ready = requests.get(srv.admin_url + "/ready", timeout=5)
    assert ready.status_code == 200, f"/ready after bomb: HTTP {ready.status_code}"
    q = get_trace(http, srv, GOOD_TRACE_ID)
    assert q.status_code == 200, f"query after bomb: HTTP {q.status_code} {q.text[:200]!r}"


@pytest.mark.parametrize("bad_trace_id", [
    "0123456789abcdef0123456789abcd",        # 30 hex chars
    "zz23456789abcdef0123456789abcdef",      # 32 chars, not hex
])
def test_otlp_http_json_bad_trace_id_partial_success(srv, http, bad_trace_id):
    good_tid, good_sid = os.urandom(16).hex(), os.urandom(8).hex()
    now = time.time_ns()
    spans = [
        json_span(bad_trace_id, os.urandom(8).hex(), "bad-span", start_ns=now, duration_ns=1000),
        json_span(good_tid, good_sid, "good-span", start_ns=now, duration_ns=1000),
    ]
    r = http.post(srv.otlp_http_url + "/v1/traces", data=json.dumps(json_request("partial-svc", spans)),
                  headers=JSON, timeout=10)
    assert r.status_code == 200, f"expected 200 partial success, got {r.status_code}: {r.text[:300]!r}"
    try:
        body = r.json()
    except ValueError:
        pytest.fail(f"response is not JSON: {r.headers.get('Content-Type')} {r.content[:300]!r}")
    ps = body.get("partialSuccess") if isinstance(body, dict) else None
    assert isinstance(ps, dict), f"expected partialSuccess object, body {body!r}"
    assert int(ps.get("rejectedSpans", 0)) == 1, f"expected rejectedSpans 1, body {body!r}"
    msg = ps.get("errorMessage") or ""
    assert re.search(r"trace.?id", msg, re.I), f"errorMessage {msg!r} does not name the trace id problem"
    status, qbody, found = wait_for_spans(http, srv, good_tid, {int(good_sid, 16)})
    assert found == {int(good_sid, 16)}, \
        f"valid span of the partially rejected request not stored: HTTP {status} {qbody!r}"


def test_otlp_http_get_not_allowed(srv, http):
    r = http.get(srv.otlp_http_url + "/v1/traces", timeout=10)
    assert r.status_code == 405, f"expected 405, got {r.status_code}: {r.text[:300]!r}"


# --------------------------------------------------------------------------
# OTLP/gRPC
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def channel(srv):
    ch = grpc.insecure_channel(srv.grpc_target)
    grpc.channel_ready_future(ch).result(timeout=10)
    yield ch
    ch.close()


def test_grpc_garbage_is_invalid_argument(channel):
    raw = channel.unary_unary(EXPORT_METHOD, request_serializer=None, response_deserializer=None)
    with pytest.raises(grpc.RpcError) as ei:
        raw(GARBAGE, timeout=10)
    err = ei.value
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, \
        f"expected INVALID_ARGUMENT, got {err.code()} ({err.details()!r})"


def test_grpc_short_trace_id_partial_success(srv, http, channel):
    export = channel.unary_unary(EXPORT_METHOD, request_serializer=ExportTraceServiceRequest.SerializeToString,
                                 response_deserializer=ExportTraceServiceResponse.FromString)
    good_tid, good_sid = os.urandom(16), os.urandom(8)
    now = time.time_ns()
    req = pb_request("grpc-partial-svc", [
        pb_span(os.urandom(5), os.urandom(8), "bad-span", start_ns=now, duration_ns=1000),
        pb_span(good_tid, good_sid, "good-span", start_ns=now, duration_ns=1000),
    ])
    try:
        resp = export(req, timeout=10)
    except grpc.RpcError as e:
        pytest.fail(f"expected OK with partial success, got {e.code()} ({e.details()!r})")
    assert resp.partial_success.rejected_spans == 1, f"expected rejected_spans 1, got {resp!r}"
    assert re.search(r"trace.?id", resp.partial_success.error_message, re.I), \
        f"error_message {resp.partial_success.error_message!r} does not name the trace id problem"
    sid = int.from_bytes(good_sid, "big")
    status, qbody, found = wait_for_spans(http, srv, good_tid.hex(), {sid})
    assert found == {sid}, f"valid span of the partially rejected request not stored: HTTP {status} {qbody!r}"


# --------------------------------------------------------------------------
# Query API
# --------------------------------------------------------------------------

QUERY_CASES = {
    # id: (path, status, msg pattern or exact-message marker)
    "trace-id-not-hex": ("/api/traces/nothex", 400, r"trace.?id|hex"),
    "search-limit-abc": ("/api/traces?service=x&limit=abc", 400, r"\blimit\b"),
    "search-minDuration-xyz": ("/api/traces?service=x&minDuration=xyz", 400, r"minDuration"),
    "search-tags-notjson": ("/api/traces?service=x&tags=notjson", 400, r"\btags\b"),
    "search-start-abc": ("/api/traces?service=x&start=abc", 400, r"\bstart\b"),
}


@pytest.mark.parametrize("case", list(QUERY_CASES))
def test_query_rejects(srv, http, case):
    path, status, pattern = QUERY_CASES[case]
    r = http.get(srv.query_url + path, timeout=10)
    query_error(r, status, pattern)


def test_query_unknown_trace_is_404(srv, http):
    r = http.get(srv.query_url + "/api/traces/" + "0badc0de" * 4, timeout=10)
    msg = query_error(r, 404, None)
    assert msg == "trace not found", f"expected msg 'trace not found', got {msg!r}"


def test_query_v3_bad_trace_id(srv, http):
    r = http.get(srv.query_url + "/api/v3/traces/zzz", timeout=10)
    assert r.status_code == 400, f"expected 400, got {r.status_code}: {r.text[:300]!r}"
    try:
        body = r.json()
    except ValueError:
        pytest.fail(f"body is not JSON: {r.text[:300]!r}")
    err = body.get("error") if isinstance(body, dict) else None
    assert isinstance(err, dict), f"expected {{\"error\": {{...}}}}, body {body!r}"
    assert err.get("httpCode") == 400, f"expected error.httpCode 400, body {body!r}"
    msg = err.get("message")
    assert isinstance(msg, str) and re.search(r"trace.?id|hex", msg, re.I), \
        f"error.message {msg!r} does not name the problem"


# --------------------------------------------------------------------------
# Finally: data intact, server still accepts data (defined last: runs last)
# --------------------------------------------------------------------------

def test_zz_good_trace_intact(srv, http, good_trace):
    assert srv.alive(), "server is no longer running"
    r = get_trace(http, srv, GOOD_TRACE_ID)
    assert r.status_code == 200, f"good trace: HTTP {r.status_code} {r.text[:300]!r}"
    assert _normalize_trace(r.json()) == good_trace, "the good trace changed after the bad inputs"


def test_zz_still_accepts_new_data(srv, http, channel):
    # protobuf over HTTP
    tid, sid = os.urandom(16), os.urandom(8)
    r = post_protobuf(http, srv, pb_request("after-svc", [
        pb_span(tid, sid, "after-http", start_ns=time.time_ns(), duration_ns=1000)]))
    assert r.status_code == 200, f"HTTP export after bad inputs: {r.status_code} {r.text[:300]!r}"
    # gzip'd JSON over HTTP
    jtid, jsid = os.urandom(16).hex(), os.urandom(8).hex()
    body = gzip.compress(json.dumps(json_request("after-svc", [
        json_span(jtid, jsid, "after-json", start_ns=time.time_ns(), duration_ns=1000)])).encode())
    r = http.post(srv.otlp_http_url + "/v1/traces", data=body,
                  headers={**JSON, "Content-Encoding": "gzip"}, timeout=10)
    assert r.status_code == 200, f"gzip JSON export after bad inputs: {r.status_code} {r.text[:300]!r}"
    # gRPC
    gtid, gsid = os.urandom(16), os.urandom(8)
    export = channel.unary_unary(EXPORT_METHOD, request_serializer=ExportTraceServiceRequest.SerializeToString,
                                 response_deserializer=ExportTraceServiceResponse.FromString)
    resp = export(pb_request("after-svc", [pb_span(gtid, gsid, "after-grpc", start_ns=time.time_ns(),
                                                   duration_ns=1000)]), timeout=10)
    assert resp.partial_success.rejected_spans == 0, resp
    for t, s in ((tid.hex(), sid.hex()), (jtid, jsid), (gtid.hex(), gsid.hex())):
        status, qbody, found = wait_for_spans(http, srv, t, {int(s, 16)})
        assert found == {int(s, 16)}, f"new span {s} of trace {t} not readable: HTTP {status} {qbody!r}"
