"""Emits a trace with the OpenTelemetry Python SDK's Jaeger exporter (gRPC,
jaeger.api_v2.CollectorService/PostSpans) and prints what it sent as JSON.
Runs in its own virtualenv: the exporter's last release pins older
protobuf support packages than the OTLP exporters."""

import json
import sys
import time

from opentelemetry import trace
from opentelemetry.exporter.jaeger.proto.grpc import JaegerExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode


def main(endpoint: str) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "otel-jaeger-grpc",
                                                        "deployment.environment": "e2e"}))
    exporter = JaegerExporter(collector_endpoint=endpoint, insecure=True)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("e2e.jaeger", "3.1.4")
    sent = []
    with tracer.start_as_current_span("POST /pay", kind=SpanKind.SERVER,
                                      attributes={"http.method": "POST", "retries": 2,
                                                  "ratio": 0.75, "cached": False}) as root:
        time.sleep(0.002)
        with tracer.start_as_current_span("charge", kind=SpanKind.CLIENT) as child:
            child.add_event("declined", {"code": "51"})
            child.set_status(Status(StatusCode.ERROR, "card declined"))
            time.sleep(0.002)
    for s in (root, child):
        ctx = s.get_span_context()
        sent.append({
            "span_id": f"{ctx.span_id:016x}",
            "parent_id": f"{s.parent.span_id:016x}" if s.parent else "",
            "name": s.name,
            "start_us": s.start_time // 1000,
            "duration_us": (s.end_time - s.start_time) // 1000,
        })
    provider.shutdown()
    print(json.dumps({"trace_id": f"{root.get_span_context().trace_id:032x}", "spans": sent}))


if __name__ == "__main__":
    main(sys.argv[1])
