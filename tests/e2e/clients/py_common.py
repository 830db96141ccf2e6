"""Shared trace scenario for the Python OpenTelemetry e2e clients.

The scenario is emitted with the real OpenTelemetry Python SDK and exported with
whichever OTLP exporter the calling script passes in.  Every batch that the SDK
hands to the exporter is re-encoded with the exporter's own encoder
(``encode_spans``) so that the JSON document printed on stdout describes exactly
the request payload that went over the wire (after all SDK processing: default
resource attributes, attribute typing, trace state, ...).

Printed document (shared with the JS client, see clients/js_http.mjs)::

    {
      "client": "py-grpc", "transport": "otlp-grpc",
      "run_id": "...", "main_trace_id": "<32 hex>", "linked_trace_id": "<32 hex>",
      "services": ["e2e-py-grpc", "e2e-py-grpc-payments"],
      "spans": [ {
          "trace_id", "span_id", "parent_span_id" ("" for a root), "trace_state",
          "flags" (OTLP span flags),
          "name", "kind" (OTLP enum int), "start_ns", "end_ns",
          "attributes": [attr], "events": [{"time_ns", "name", "attributes"}],
          "links": [{"trace_id", "span_id", "trace_state", "attributes"}],
          "status": {"code" (OTLP int), "message"},
          "resource": [attr], "scope": {"name", "version"} } ]
    }

    attr = {"key": k, "type": "string"|"bool"|"int"|"double"|"bytes"|"array"|"kvlist",
            "value": v}   # array: list of {"type","value"}; kvlist: list of attr;
                          # bytes: base64 text
"""

from __future__ import annotations

import base64
import json
import sys
import time
import uuid
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.span import TraceState

ROOT_OPERATION = "GET /checkout"
CLIENT_OPERATION = "POST /payments"
INTERNAL_OPERATION = "charge card"
PRODUCER_OPERATION = "publish order-created"
MAIN_TRACE_STATE = [("waymark", "e2e"), ("vendor", "x1")]


class RecordingExporter(SpanExporter):
    """Delegates to a real OTLP exporter and remembers what it sent and how it went."""

    def __init__(self, inner: SpanExporter):
        self._inner = inner
        self.requests = []  # encoded ExportTraceServiceRequest protobufs
        self.results: list[SpanExportResult] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.requests.append(encode_spans(spans))
        result = self._inner.export(spans)
        self.results.append(result)
        return result

    def shutdown(self) -> None:
        # Shared by two providers: the script shuts the real exporter down once.
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


class ScenarioSampler(Sampler):
    """Samples everything; gives the main trace's root a W3C trace state that its
    descendants inherit; the producer trace gets none."""

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None,
                      links=None, trace_state=None) -> SamplingResult:
        parent = trace.get_current_span(parent_context).get_span_context()
        if parent.is_valid:
            state = parent.trace_state
        elif name == ROOT_OPERATION:
            state = TraceState(MAIN_TRACE_STATE)
        else:
            state = None
        # The SDK takes the span's attributes from the sampling result.
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, state)

    def get_description(self) -> str:
        return "e2e-scenario-sampler"


# ---------------------------------------------------------------------------
# protobuf -> normalized JSON document
# ---------------------------------------------------------------------------

def _any_value(v) -> dict:
    which = v.WhichOneof("value")
    if which == "string_value":
        return {"type": "string", "value": v.string_value}
    if which == "bool_value":
        return {"type": "bool", "value": v.bool_value}
    if which == "int_value":
        return {"type": "int", "value": int(v.int_value)}
    if which == "double_value":
        return {"type": "double", "value": float(v.double_value)}
    if which == "bytes_value":
        return {"type": "bytes", "value": base64.b64encode(v.bytes_value).decode()}
    if which == "array_value":
        return {"type": "array", "value": [_any_value(x) for x in v.array_value.values]}
    if which == "kvlist_value":
        return {"type": "kvlist", "value": _attributes(v.kvlist_value.values)}
    raise ValueError(f"empty AnyValue in request: {v!r}")


def _attributes(kvs) -> list:
    return [{"key": kv.key, **_any_value(kv.value)} for kv in kvs]


def normalize_request(request) -> list:
    spans = []
    for rs in request.resource_spans:
        resource = _attributes(rs.resource.attributes)
        for ss in rs.scope_spans:
            scope = {"name": ss.scope.name, "version": ss.scope.version}
            for s in ss.spans:
                spans.append({
                    "trace_id": s.trace_id.hex(),
                    "span_id": s.span_id.hex(),
                    "parent_span_id": s.parent_span_id.hex(),
                    "trace_state": s.trace_state,
                    "flags": int(s.flags),
                    "name": s.name,
                    "kind": int(s.kind),
                    "start_ns": int(s.start_time_unix_nano),
                    "end_ns": int(s.end_time_unix_nano),
                    "attributes": _attributes(s.attributes),
                    "events": [
                        {"time_ns": int(e.time_unix_nano), "name": e.name,
                         "attributes": _attributes(e.attributes)}
                        for e in s.events
                    ],
                    "links": [
                        {"trace_id": l.trace_id.hex(), "span_id": l.span_id.hex(),
                         "trace_state": l.trace_state, "attributes": _attributes(l.attributes)}
                        for l in s.links
                    ],
                    "status": {"code": int(s.status.code), "message": s.status.message},
                    "resource": resource,
                    "scope": scope,
                })
    return spans


# ---------------------------------------------------------------------------
# the scenario
# ---------------------------------------------------------------------------

class _PaymentDeclined(RuntimeError):
    pass


def run_scenario(client: str, transport: str, exporter: SpanExporter) -> int:
    run_id = uuid.uuid4().hex
    service = f"e2e-{client}"
    payments_service = f"{service}-payments"

    recorder = RecordingExporter(exporter)
    sampler = ScenarioSampler()
    provider_a = TracerProvider(
        sampler=sampler,
        resource=Resource.create({
            "service.name": service,
            "e2e.run_id": run_id,
            "e2e.client": client,
            "e2e.resource.int": 7,
            "e2e.resource.bool": True,
        }),
    )
    provider_b = TracerProvider(
        sampler=sampler,
        resource=Resource.create({
            "service.name": payments_service,
            "e2e.run_id": run_id,
            "e2e.resource.double": 0.5,
        }),
    )
    for p in (provider_a, provider_b):
        p.add_span_processor(BatchSpanProcessor(recorder))

    tracer_a = provider_a.get_tracer("e2e.checkout", "1.2.3")
    tracer_b = provider_b.get_tracer("e2e.payments", "0.9.0")

    # Explicit timestamps: whole seconds a little in the past, plus fixed
    # microsecond offsets and a sub-microsecond remainder (end remainder >
    # start remainder so that the microsecond duration is unambiguous).
    base = (time.time_ns() // 1_000_000_000 - 5) * 1_000_000_000

    def t(micros: int, sub_micro_ns: int) -> int:
        return base + micros * 1000 + sub_micro_ns

    # A separate trace whose span the CLIENT span links to.
    producer = tracer_a.start_span(
        PRODUCER_OPERATION, kind=SpanKind.PRODUCER, start_time=t(0, 321),
        attributes={"messaging.system": "e2e-queue", "messaging.destination.name": "orders"},
    )
    producer.end(end_time=t(5_000, 654))

    root = tracer_a.start_span(
        ROOT_OPERATION, kind=SpanKind.SERVER, start_time=t(10_000, 123),
        attributes={
            "http.request.method": "GET",
            "http.route": "/checkout",
            "http.response.status_code": 402,
            "e2e.order_id": f"order-{run_id}",
            "e2e.str": "héllo wörld ✓",
            "e2e.str_empty": "",
            "e2e.bool": True,
            "e2e.bool_false": False,
            "e2e.int": 42,
            "e2e.int_neg": -7,
            "e2e.int_big": 9007199254740993,
            "e2e.int_big_neg": -9007199254740993,
            "e2e.int_max": 9223372036854775807,
            "e2e.double": 3.14159,
            "e2e.double_neg": -0.5,
            "e2e.double_whole": 2.0,
            "e2e.str_array": ["a", "b\"q", "ü"],
            "e2e.int_array": [1, -2, 9007199254740993],
            "e2e.bool_array": [True, False],
            "e2e.double_array": [1.5, -2.25],
        },
    )
    root.add_event("request.received", timestamp=t(11_000, 777), attributes={
        "e2e.event.str": "cart-17",
        "e2e.event.int": 3,
        "e2e.event.bool": True,
        "e2e.event.double": 0.25,
        "e2e.event.str_array": ["x", "y"],
    })

    root_ctx = trace.set_span_in_context(root)
    client_span = tracer_a.start_span(
        CLIENT_OPERATION, context=root_ctx, kind=SpanKind.CLIENT, start_time=t(20_000, 5),
        attributes={
            "http.request.method": "POST",
            "server.address": "payments.internal",
            "server.port": 8443,
        },
        links=[Link(producer.get_span_context(), {
            "e2e.link.reason": "triggered-by",
            "e2e.link.n": 1,
        })],
    )
    client_span.add_event("retry", timestamp=t(21_000, 1), attributes={"attempt": 2})

    child_ctx = trace.set_span_in_context(client_span)
    internal = tracer_b.start_span(
        INTERNAL_OPERATION, context=child_ctx, kind=SpanKind.INTERNAL,
        start_time=t(30_000, 100),
        attributes={"payment.amount": 19.99, "payment.currency": "EUR"},
    )
    internal.add_event("card.validated", timestamp=t(31_000, 2))
    internal.end(end_time=t(230_000, 200))

    client_span.set_status(Status(StatusCode.OK))
    client_span.end(end_time=t(240_000, 995))

    try:
        raise _PaymentDeclined("card declined by issuer")
    except _PaymentDeclined as exc:
        root.record_exception(exc, timestamp=t(250_000, 999),
                              attributes={"e2e.exception.extra": "yes"})
    root.set_status(Status(StatusCode.ERROR, "payment declined"))
    root.end(end_time=t(260_000, 456))

    ok = True
    for p in (provider_a, provider_b):
        if not p.force_flush(timeout_millis=30_000):
            print(f"{client}: force_flush timed out", file=sys.stderr)
            ok = False
    for p in (provider_a, provider_b):
        p.shutdown()
    exporter.shutdown()

    if not recorder.results:
        print(f"{client}: nothing was exported", file=sys.stderr)
        ok = False
    for r in recorder.results:
        if r is not SpanExportResult.SUCCESS:
            print(f"{client}: export result {r}", file=sys.stderr)
            ok = False

    spans = [s for req in recorder.requests for s in normalize_request(req)]
    doc = {
        "client": client,
        "transport": transport,
        "run_id": run_id,
        "main_trace_id": format(root.get_span_context().trace_id, "032x"),
        "linked_trace_id": format(producer.get_span_context().trace_id, "032x"),
        "services": [service, payments_service],
        "export_requests": len(recorder.requests),
        "spans": spans,
    }
    print(json.dumps(doc, ensure_ascii=False, indent=1))
    return 0 if ok else 1
