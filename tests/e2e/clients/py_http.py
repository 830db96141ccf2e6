"""Python OpenTelemetry SDK -> OTLP/HTTP protobuf exporter.

Endpoint from the standard env var OTEL_EXPORTER_OTLP_ENDPOINT (e.g.
http://127.0.0.1:4318; the exporter appends /v1/traces).  Prints the JSON
document described in py_common.py.
"""

import sys

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

from py_common import run_scenario

if __name__ == "__main__":
    sys.exit(run_scenario("py-http", "otlp-http-protobuf", OTLPSpanExporter()))
