"""Zipkin ingest with a real Zipkin client: py_zipkin's tracer and its HTTP
transport, in the v2 JSON, v2 protobuf and v1 JSON encodings (v1 Thrift with
the zipkincore Thrift types that jaeger-client ships, since py_zipkin dropped
its Thrift encoder), read back
through the Jaeger API. Checks the mapping Jaeger applies to Zipkin spans:
service from the local endpoint, kind, parent, binary annotations as tags,
annotations as logs, the error tag as error status, and the shared
client/server span of the v1 encoding split into two spans."""

import time

import pytest
import requests
from py_zipkin import Encoding, Kind
from py_zipkin.transport import SimpleHTTPTransport
from py_zipkin.zipkin import zipkin_span

ENCODINGS = {
    "v2-json": Encoding.V2_JSON,
    "v2-proto": Encoding.V2_PROTO3,
    "v1-json": Encoding.V1_JSON,
}


def _emit(port: int, encoding, tag: str):
    transport = SimpleHTTPTransport("127.0.0.1", port)
    with zipkin_span(service_name=f"zipkin-{tag}", span_name="checkout",
                     transport_handler=transport, sample_rate=100.0, encoding=encoding,
                     kind=Kind.SERVER, binary_annotations={"http.path": "/checkout"}) as root:
        time.sleep(0.002)
        with zipkin_span(service_name=f"zipkin-{tag}", span_name="charge card",
                         kind=Kind.CLIENT,
                         binary_annotations={"error": "card declined", "amount": "12.50"}) as child:
            child.add_annotation("retrying")
            time.sleep(0.002)
            child.add_sa_binary_annotation(port=8443, service_name="payments", host="10.1.2.3")
        trace_id = root.zipkin_attrs.trace_id
        ids = (root.zipkin_attrs.span_id, child.zipkin_attrs.span_id)
    return trace_id, ids


def _get_trace(waymark, trace_id: str, want_spans: int) -> dict:
    deadline = time.monotonic() + 10
    last = None
    while time.monotonic() < deadline:
        r = requests.get(f"{waymark.query_url}/api/traces/{trace_id}", timeout=5)
        last = r
        if r.status_code == 200 and len(r.json()["data"][0]["spans"]) >= want_spans:
            return r.json()["data"][0]
        time.sleep(0.05)
    raise AssertionError(f"trace {trace_id} not complete: {last.status_code} {last.text[:500]}")


def _tags(span):
    return {t["key"]: t["value"] for t in span["tags"]}


@pytest.mark.parametrize("name", list(ENCODINGS))
def test_zipkin_client_round_trip(waymark, name):
    trace_id, (root_id, child_id) = _emit(waymark.zipkin_port, ENCODINGS[name], name)
    trace = _get_trace(waymark, trace_id, 2)
    spans = {s["spanID"]: s for s in trace["spans"]}
    assert set(spans) == {root_id, child_id}, spans.keys()
    root, child = spans[root_id], spans[child_id]
    proc = trace["processes"][root["processID"]]
    assert proc["serviceName"] == f"zipkin-{name}"
    assert root["operationName"] == "checkout"
    assert root["references"] == []
    assert child["references"] == [{"refType": "CHILD_OF", "traceID": trace["traceID"], "spanID": root_id}]
    assert _tags(root)["span.kind"] == "server"
    assert _tags(root)["http.path"] == "/checkout"
    ct = _tags(child)
    assert ct["span.kind"] == "client"
    assert ct["error"] is True
    assert ct["otel.status_description"] == "card declined"
    assert ct["amount"] == "12.50"
    assert ct["peer.service"] == "payments"
    assert ct["peer.port"] == 8443
    assert [f["value"] for f in child["logs"][0]["fields"] if f["key"] == "event"] == ["retrying"]
    assert child["duration"] >= 2000, "µs, from the Zipkin duration"
    assert root["startTime"] <= child["startTime"]
    # Searchable like any other span.
    r = requests.get(f"{waymark.query_url}/api/traces", timeout=5,
                     params={"service": f"zipkin-{name}", "tags": '{"error":"true"}', "lookback": "1h"})
    assert [t["traceID"] for t in r.json()["data"]] == [trace["traceID"]]


def test_v1_shared_span_is_split(waymark):
    """A v1 span carrying both client and server annotations (one span id,
    two services) comes back as a client span and a server span, the server
    one with its own id and the client as parent."""
    trace = "5af7183fb1d4cf5f"
    span = "352bff9a74ca9ad2"
    now_us = int(time.time() * 1e6)
    body = [{
        "traceId": trace, "id": span, "name": "get /users",
        "timestamp": now_us, "duration": 900,
        "annotations": [
            {"timestamp": now_us, "value": "cs", "endpoint": {"serviceName": "web"}},
            {"timestamp": now_us + 100, "value": "sr", "endpoint": {"serviceName": "users"}},
            {"timestamp": now_us + 800, "value": "ss", "endpoint": {"serviceName": "users"}},
            {"timestamp": now_us + 900, "value": "cr", "endpoint": {"serviceName": "web"}},
        ],
    }]
    r = requests.post(f"http://127.0.0.1:{waymark.zipkin_port}/api/v1/spans", json=body, timeout=5)
    assert r.status_code == 202, r.text
    t = _get_trace(waymark, trace, 2)
    by_kind = {_tags(s)["span.kind"]: s for s in t["spans"]}
    client, server = by_kind["client"], by_kind["server"]
    assert client["spanID"] == span
    assert server["spanID"] != span
    assert server["references"][0]["spanID"] == span
    assert server["warnings"] and "shared" in server["warnings"][0]
    assert t["processes"][client["processID"]]["serviceName"] == "web"
    assert t["processes"][server["processID"]]["serviceName"] == "users"
    assert (client["duration"], server["duration"]) == (900, 700)


def test_zipkin_errors_are_precise(waymark):
    base = f"http://127.0.0.1:{waymark.zipkin_port}"
    r = requests.post(base + "/api/v2/spans", data=b"{not json", timeout=5,
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.text
    r = requests.post(base + "/api/v2/spans", data=b"x", timeout=5,
                      headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and "text/plain" in r.text
    r = requests.post(base + "/api/v1/spans", data=b"x", timeout=5,
                      headers={"Content-Type": "application/x-thrift"})
    assert r.status_code == 400 and "Thrift" in r.text, r.text
    r = requests.post(base + "/api/v1/spans", data=b"x", timeout=5,
                      headers={"Content-Type": "application/xml"})
    assert r.status_code == 415 and "application/xml" in r.text


def test_v1_thrift_with_zipkincore_types(waymark):
    """Zipkin v1 Thrift: a binary-protocol list of zipkincore.Span, built with
    the generated zipkincore types jaeger-client ships and the thrift
    library's own serializer."""
    import struct

    from jaeger_client.thrift_gen.zipkincore import ttypes as z
    from thrift.protocol import TBinaryProtocol
    from thrift.Thrift import TType
    from thrift.transport import TTransport

    now_us = int(time.time() * 1e6)
    ep = z.Endpoint(ipv4=0x0A000001, port=8080, service_name="thrift-front")
    span = z.Span(
        trace_id=0x1234567890ABCDEF, id=0x1111, name="get /thrift",
        annotations=[z.Annotation(timestamp=now_us, value="sr", host=ep),
                     z.Annotation(timestamp=now_us + 500, value="ss", host=ep)],
        binary_annotations=[
            # The generated code writes values as str; these bytes are ASCII.
            z.BinaryAnnotation(key="http.path", value="/thrift", annotation_type=z.AnnotationType.STRING, host=ep),
            z.BinaryAnnotation(key="retries", value=struct.pack(">i", 3).decode(), annotation_type=z.AnnotationType.I32, host=ep),
            z.BinaryAnnotation(key="cached", value="\x01", annotation_type=z.AnnotationType.BOOL, host=ep),
        ],
        timestamp=now_us, duration=500, trace_id_high=0x0FEDCBA987654321)
    buf = TTransport.TMemoryBuffer()
    proto = TBinaryProtocol.TBinaryProtocol(buf)
    proto.writeListBegin(TType.STRUCT, 1)
    span.write(proto)
    proto.writeListEnd()
    r = requests.post(f"http://127.0.0.1:{waymark.zipkin_port}/api/v1/spans", data=buf.getvalue(),
                      headers={"Content-Type": "application/x-thrift"}, timeout=5)
    assert r.status_code == 202, r.text
    t = _get_trace(waymark, "0fedcba9876543211234567890abcdef", 1)
    s = t["spans"][0]
    assert s["spanID"] == "0000000000001111"
    assert s["operationName"] == "get /thrift"
    assert (s["startTime"], s["duration"]) == (now_us, 500)
    tags = _tags(s)
    assert tags["span.kind"] == "server"
    assert tags["http.path"] == "/thrift"
    assert tags["retries"] == "3"
    assert tags["cached"] == "true"
    proc = t["processes"][s["processID"]]
    assert proc["serviceName"] == "thrift-front"
    assert {x["key"]: x["value"] for x in proc["tags"]}["ip"] == "10.0.0.1"


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_opentelemetry_zipkin_exporter(waymark, protocol):
    """The OpenTelemetry Python SDK's Zipkin JSON exporter (v1 and v2):
    what it put on the wire (captured from its HTTP session) is compared
    span by span with what the Jaeger API returns."""
    import json

    from opentelemetry.exporter.zipkin.encoder import Protocol
    from opentelemetry.exporter.zipkin.json import ZipkinExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import SpanKind, Status, StatusCode

    service = f"otel-zipkin-{protocol}"
    endpoint = f"http://127.0.0.1:{waymark.zipkin_port}/api/{protocol}/spans"
    # (the v1 encoder needs an explicit tag length limit: it compares None > 0)
    exporter = ZipkinExporter(version=Protocol.V1 if protocol == "v1" else Protocol.V2, endpoint=endpoint,
                              max_tag_value_length=4096)
    sent = []
    post = exporter.session.post

    def capture(url, data=None, **kw):
        sent.append(json.loads(data))
        r = post(url, data=data, **kw)
        assert r.status_code == 202, r.text
        return r

    exporter.session.post = capture
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("e2e.zipkin", "2.0")
    with tracer.start_as_current_span("GET /basket", kind=SpanKind.SERVER,
                                      attributes={"http.method": "GET", "items": 3, "ratio": 0.5,
                                                  "cached": True, "skus": ["a", "b"]}) as root:
        time.sleep(0.002)
        with tracer.start_as_current_span("reserve stock", kind=SpanKind.CLIENT) as child:
            child.add_event("retry", {"attempt": 2})
            child.set_status(Status(StatusCode.ERROR, "out of stock"))
            time.sleep(0.002)
    provider.shutdown()
    trace_id = f"{root.get_span_context().trace_id:032x}"
    assert len(sent) == 2, sent

    trace = _get_trace(waymark, trace_id, 2)
    got = {s["spanID"]: s for s in trace["spans"]}
    for payload in sent:
        (z,) = payload
        span = got[z["id"]]
        assert span["operationName"] == z["name"]
        assert trace["processes"][span["processID"]]["serviceName"] == service
        assert span["startTime"] == z["timestamp"] and span["duration"] == z["duration"]
        assert [r["spanID"] for r in span["references"]] == ([z["parentId"]] if "parentId" in z else [])
        tags = _tags(span)
        if protocol == "v2":
            assert tags["span.kind"] == z["kind"].lower()
            wire_tags = z.get("tags", {})
            logs = [(a["timestamp"], a["value"]) for a in z.get("annotations", [])]
        else:
            wire_tags = {b["key"]: b["value"] for b in z.get("binaryAnnotations", [])}
            logs = [(a["timestamp"], a["value"]) for a in z.get("annotations", [])]
        for k, v in wire_tags.items():
            if k == "error":
                assert tags["error"] is True and tags["otel.status_description"] == v, tags
            else:
                assert str(tags[k]).lower() == str(v).lower(), (k, tags.get(k), v)
        assert [(l["timestamp"], [f["value"] for f in l["fields"] if f["key"] == "event"][0])
                for l in span["logs"]] == logs
    child_tags = _tags(got[f"{child.get_span_context().span_id:016x}"])
    assert child_tags["error"] is True
    assert child_tags["otel.status_description"] == "out of stock"
