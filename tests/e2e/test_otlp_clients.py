"""End-to-end: real OpenTelemetry clients -> Waymark OTLP receivers -> query APIs.

Every test is parametrized over the clients in conftest.CLIENTS.  The ``sent``
document lists each span exactly as the client put it on the wire; the tests
derive the expected API output from it (rules in e2e_compare.py) and compare
every field.
"""

from __future__ import annotations

import json
import time

import pytest
import requests

from e2e_compare import (
    SPAN_KIND_JAEGER,
    Mismatches,
    check_envelope,
    compare_jaeger_trace,
    compare_v3_trace,
)

ROOT_OPERATION = "GET /checkout"
CLIENT_OPERATION = "POST /payments"
INTERNAL_OPERATION = "charge card"
PRODUCER_OPERATION = "publish order-created"
INGEST_TIMEOUT_S = 20.0
HTTP_TIMEOUT_S = 10.0


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def spans_of(doc: dict, trace_id: str) -> list[dict]:
    return [s for s in doc["spans"] if s["trace_id"] == trace_id]


def root_span(doc: dict) -> dict:
    (root,) = [s for s in spans_of(doc, doc["main_trace_id"]) if not s["parent_span_id"]]
    return root


def attr_value(attrs: list[dict], key: str):
    (a,) = [a for a in attrs if a["key"] == key]
    return a["value"]


def service_of(span: dict) -> str:
    return attr_value(span["resource"], "service.name")


def get_json(url: str, params=None, expect_status: int = 200):
    r = requests.get(url, params=params, timeout=HTTP_TIMEOUT_S)
    assert r.status_code == expect_status, (
        f"GET {r.url}: expected HTTP {expect_status}, got {r.status_code}: {r.text[:2000]}")
    try:
        return r.json()
    except ValueError:
        pytest.fail(f"GET {r.url}: response is not JSON: {r.text[:2000]!r}")


_STORED: set[str] = set()


def wait_until_stored(server, doc: dict) -> None:
    """Poll /api/traces/{id} until every trace the client sent is readable with
    all of its spans (ingestion may be asynchronous)."""
    for trace_id in (doc["main_trace_id"], doc["linked_trace_id"]):
        if trace_id in _STORED:
            continue
        want = len(spans_of(doc, trace_id))
        deadline = time.monotonic() + INGEST_TIMEOUT_S
        last = "no response"
        while time.monotonic() < deadline:
            try:
                r = requests.get(f"{server.query_url}/api/traces/{trace_id}", timeout=HTTP_TIMEOUT_S)
                last = f"HTTP {r.status_code}: {r.text[:500]}"
                if r.status_code == 200:
                    data = r.json().get("data") or []
                    if data and len(data[0].get("spans") or []) >= want:
                        _STORED.add(trace_id)
                        break
            except (requests.RequestException, ValueError, AttributeError) as e:
                last = repr(e)
            time.sleep(0.25)
        else:
            pytest.fail(f"{doc['client']}: trace {trace_id} ({want} spans) not readable via "
                        f"/api/traces/{trace_id} after {INGEST_TIMEOUT_S:.0f}s; last: {last}")


@pytest.fixture
def stored(sent, waymark):
    wait_until_stored(waymark, sent)
    return sent


# ---------------------------------------------------------------------------
# the client itself
# ---------------------------------------------------------------------------

def test_client_sent_the_scenario(sent):
    """Sanity check of the client document (so later failures are the server's)."""
    main = spans_of(sent, sent["main_trace_id"])
    linked = spans_of(sent, sent["linked_trace_id"])
    assert sorted(s["name"] for s in main) == sorted([ROOT_OPERATION, CLIENT_OPERATION,
                                                      INTERNAL_OPERATION])
    assert [s["name"] for s in linked] == [PRODUCER_OPERATION]
    assert len(sent["spans"]) == 4
    root = root_span(sent)
    assert root["status"] == {"code": 2, "message": "payment declined"}
    assert [e["name"] for e in root["events"]] == ["request.received", "exception"]
    assert {service_of(s) for s in sent["spans"]} == set(sent["services"])
    types = {a["type"] for a in root["attributes"]}
    assert {"string", "bool", "int", "double", "array"} <= types
    assert any(a["type"] == "int" and abs(a["value"]) > 2**53 for a in root["attributes"])
    (client_span,) = [s for s in main if s["name"] == CLIENT_OPERATION]
    assert client_span["links"] and client_span["links"][0]["attributes"]
    assert root["trace_state"]


# ---------------------------------------------------------------------------
# Jaeger-compatible JSON: GET /api/traces/{id}
# ---------------------------------------------------------------------------

def test_jaeger_get_trace(stored, waymark):
    doc = stored
    mm = Mismatches(f"{doc['client']}: GET /api/traces/{{id}}")
    for trace_id in (doc["main_trace_id"], doc["linked_trace_id"]):
        body = get_json(f"{waymark.query_url}/api/traces/{trace_id}")
        where = f"/api/traces/{trace_id}"
        if not check_envelope(mm, body, where):
            continue
        data = body.get("data")
        if not isinstance(data, list) or len(data) != 1:
            mm.add(f"{where}.data", f"expected exactly one trace, got {data!r}")
            continue
        compare_jaeger_trace(mm, data[0], trace_id, spans_of(doc, trace_id))
    mm.raise_if_any()


# ---------------------------------------------------------------------------
# api_v3 OTLP JSON: GET /api/v3/traces/{id}
# ---------------------------------------------------------------------------

def test_api_v3_get_trace(stored, waymark):
    doc = stored
    mm = Mismatches(f"{doc['client']}: GET /api/v3/traces/{{id}}")
    for trace_id in (doc["main_trace_id"], doc["linked_trace_id"]):
        body = get_json(f"{waymark.query_url}/api/v3/traces/{trace_id}")
        compare_v3_trace(mm, body, trace_id, spans_of(doc, trace_id))
    mm.raise_if_any()


# ---------------------------------------------------------------------------
# search: GET /api/traces?service=...
# ---------------------------------------------------------------------------

def _window(doc: dict) -> list[tuple[str, object]]:
    """start/end (µs) around the client's spans, as the Jaeger UI sends them."""
    starts = [s["start_ns"] for s in doc["spans"]]
    ends = [s["end_ns"] for s in doc["spans"]]
    return [("start", min(starts) // 1000 - 60_000_000), ("end", max(ends) // 1000 + 60_000_000),
            ("limit", 20), ("lookback", "1h")]


def _order_id(doc: dict) -> str:
    return attr_value(root_span(doc)["attributes"], "e2e.order_id")


# (id, params builder, which traces must be returned: "main", "linked" or both)
SEARCH_MATCHES = [
    ("service", lambda d: [("service", d["services"][0]), ("minDuration", ""), ("maxDuration", "")],
     {"main", "linked"}),
    ("service+operation", lambda d: [("service", d["services"][0]), ("operation", ROOT_OPERATION),
                                     ("minDuration", ""), ("maxDuration", "")], {"main"}),
    ("producer-operation", lambda d: [("service", d["services"][0]),
                                      ("operation", PRODUCER_OPERATION)], {"linked"}),
    ("tags-json", lambda d: [("service", d["services"][0]), ("operation", ROOT_OPERATION),
                             ("tags", json.dumps({"e2e.order_id": _order_id(d)}))], {"main"}),
    ("tags-json-two-keys", lambda d: [("service", d["services"][0]),
                                      ("tags", json.dumps({"e2e.order_id": _order_id(d),
                                                           "http.route": "/checkout"}))], {"main"}),
    ("tag-repeated-int", lambda d: [("service", d["services"][0]),
                                    ("tag", f"e2e.order_id:{_order_id(d)}"),
                                    ("tag", "http.response.status_code:402")], {"main"}),
    ("tag-error-true", lambda d: [("service", d["services"][0]), ("tag", "error:true")], {"main"}),
    ("duration-range", lambda d: [("service", d["services"][0]), ("operation", ROOT_OPERATION),
                                  ("minDuration", "200ms"), ("maxDuration", "300ms")], {"main"}),
    ("second-service", lambda d: [("service", d["services"][1]), ("operation", INTERNAL_OPERATION),
                                  ("tag", "payment.currency:EUR")], {"main"}),
]

SEARCH_EMPTY = [
    ("unknown-operation", lambda d: [("service", d["services"][0]), ("operation", "GET /nope")]),
    ("tags-json-wrong-value", lambda d: [("service", d["services"][0]),
                                         ("tags", json.dumps({"e2e.order_id": "order-none"}))]),
    ("tag-wrong-int", lambda d: [("service", d["services"][0]),
                                 ("tag", "http.response.status_code:999")]),
    ("min-duration-too-long", lambda d: [("service", d["services"][0]), ("minDuration", "10s")]),
    ("max-duration-too-short", lambda d: [("service", d["services"][0]),
                                          ("operation", ROOT_OPERATION), ("maxDuration", "1ms")]),
    ("operation-of-other-service", lambda d: [("service", d["services"][1]),
                                              ("operation", ROOT_OPERATION)]),
]


@pytest.mark.parametrize("case_id,build,expect", SEARCH_MATCHES, ids=[c[0] for c in SEARCH_MATCHES])
def test_search_finds_trace(stored, waymark, case_id, build, expect):
    doc = stored
    params = build(doc) + _window(doc)
    r = requests.get(f"{waymark.query_url}/api/traces", params=params, timeout=HTTP_TIMEOUT_S)
    assert r.status_code == 200, f"GET {r.url}: HTTP {r.status_code}: {r.text[:2000]}"
    body = r.json()
    mm = Mismatches(f"{doc['client']}: search {case_id}: GET {r.url}")
    check_envelope(mm, body, "response")
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        mm.add("data", f"expected a list of traces, got {data!r}")
        mm.raise_if_any()
    want = {{"main": doc["main_trace_id"], "linked": doc["linked_trace_id"]}[w] for w in expect}
    got = [t.get("traceID") if isinstance(t, dict) else t for t in data]
    if sorted(got) != sorted(want):
        mm.add("data[*].traceID", f"expected exactly {sorted(want)}, got {got}")
    for t in data:
        if isinstance(t, dict) and t.get("traceID") in want:
            compare_jaeger_trace(mm, t, t["traceID"], spans_of(doc, t["traceID"]))
    mm.raise_if_any()


@pytest.mark.parametrize("case_id,build", SEARCH_EMPTY, ids=[c[0] for c in SEARCH_EMPTY])
def test_search_excludes_trace(stored, waymark, case_id, build):
    doc = stored
    params = build(doc) + _window(doc)
    r = requests.get(f"{waymark.query_url}/api/traces", params=params, timeout=HTTP_TIMEOUT_S)
    assert r.status_code == 200, f"GET {r.url}: HTTP {r.status_code}: {r.text[:2000]}"
    body = r.json()
    mm = Mismatches(f"{doc['client']}: search {case_id}: GET {r.url}")
    check_envelope(mm, body, "response")
    if body.get("data") != []:
        mm.add("data", f"expected [], got {[t.get('traceID') for t in body.get('data') or []]} "
                       f"({json.dumps(body)[:300]})")
    mm.raise_if_any()


def test_search_time_window_excludes_trace(stored, waymark):
    doc = stored
    start_us = min(s["start_ns"] for s in doc["spans"]) // 1000
    params = [("service", doc["services"][0]), ("start", start_us - 2 * 3600 * 10**6),
              ("end", start_us - 3600 * 10**6), ("limit", 20), ("lookback", "custom")]
    body = get_json(f"{waymark.query_url}/api/traces", params=params)
    assert body.get("data") == [], f"expected no traces, got {json.dumps(body)[:500]}"


# ---------------------------------------------------------------------------
# services and operations
# ---------------------------------------------------------------------------

def _ops_by_service(doc: dict) -> dict[str, set[tuple[str, str]]]:
    out: dict[str, set[tuple[str, str]]] = {}
    for s in doc["spans"]:
        out.setdefault(service_of(s), set()).add((s["name"], SPAN_KIND_JAEGER.get(s["kind"], "")))
    return out


def test_services(stored, waymark):
    body = get_json(f"{waymark.query_url}/api/services")
    data = body.get("data")
    assert isinstance(data, list), f"expected data to be a list: {body!r}"
    assert len(data) == len(set(data)), f"duplicate services: {data}"
    missing = set(stored["services"]) - set(data)
    assert not missing, f"/api/services lacks {sorted(missing)}; got {data}"


def test_service_operations(stored, waymark):
    mm = Mismatches(f"{stored['client']}: GET /api/services/{{s}}/operations")
    for service, ops in _ops_by_service(stored).items():
        body = get_json(f"{waymark.query_url}/api/services/{service}/operations")
        data = body.get("data")
        if not isinstance(data, list):
            mm.add(service, f"expected data to be a list, got {body!r}")
            continue
        if sorted(data) != sorted({name for name, _ in ops}):
            mm.add(service, f"expected {sorted({name for name, _ in ops})}, got {data}")
    mm.raise_if_any()


def test_operations_with_span_kind(stored, waymark):
    mm = Mismatches(f"{stored['client']}: GET /api/operations")
    for service, ops in _ops_by_service(stored).items():
        queries = [None] + sorted({kind for _, kind in ops}) + ["consumer"]
        for kind in queries:
            params = {"service": service}
            if kind is not None:
                params["spanKind"] = kind
            body = get_json(f"{waymark.query_url}/api/operations", params=params)
            where = f"service={service} spanKind={kind}"
            data = body.get("data")
            if not isinstance(data, list):
                mm.add(where, f"expected data to be a list, got {body!r}")
                continue
            got = []
            for op in data:
                if not isinstance(op, dict) or set(op) != {"name", "spanKind"}:
                    mm.add(where, f"expected {{'name','spanKind'}} objects, got {op!r}")
                else:
                    got.append((op["name"], op["spanKind"]))
            want = sorted(op for op in ops if kind is None or op[1] == kind)
            if sorted(got) != want:
                mm.add(where, f"expected {want}, got {sorted(got)}")
    mm.raise_if_any()
