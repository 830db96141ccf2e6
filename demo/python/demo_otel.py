"""OpenTelemetry setup and a tiny threaded WSGI server for the Python demo services.

Standard OpenTelemetry environment variables apply:
  OTEL_EXPORTER_OTLP_ENDPOINT  base URL of an OTLP/HTTP receiver (default
                               http://localhost:4318; /v1/traces is appended)
  OTEL_SERVICE_NAME            overrides the service name given to start_tracing()
  OTEL_BSP_SCHEDULE_DELAY      batch export delay in ms (default 5000)

Incoming requests are traced by the OpenTelemetry WSGI middleware, which reads
the W3C traceparent header, so a service's server span is the child of the
caller's client span.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socketserver
import sys
import time
from dataclasses import dataclass
from typing import Callable
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode

_provider: TracerProvider | None = None


def start_tracing(default_service_name: str) -> trace.Tracer:
    """Installs the global tracer provider with an OTLP/HTTP exporter."""
    global _provider
    service_name = os.environ.get("OTEL_SERVICE_NAME") or default_service_name
    resource = Resource.create({
        "service.name": service_name,
        "service.version": "0.1.0",
        "deployment.environment.name": os.environ.get("DEMO_ENVIRONMENT", "demo"),
    })
    _provider = TracerProvider(resource=resource)
    _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(_provider)
    return trace.get_tracer(service_name, "0.1.0")


def env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    value = float(raw)
    if value < 0:
        raise ValueError(f"{name} must be a non-negative number, got {raw!r}")
    return value


def env_port(name: str, default: int) -> int:
    port = int(env_number(name, default))
    if port > 65535:
        raise ValueError(f"{name} is not a port: {port}")
    return port


@dataclass
class Behaviour:
    """Latency and failures of one service, from <PREFIX>_DELAY_MS (added to
    every request), <PREFIX>_SLOW_RATE and <PREFIX>_SLOW_MS (that share of
    requests takes that much longer) and <PREFIX>_ERROR_RATE (that share fails)."""

    delay_ms: float
    slow_rate: float
    slow_ms: float
    error_rate: float

    @classmethod
    def from_env(cls, prefix: str, delay_ms=0.0, slow_rate=0.0, slow_ms=0.0, error_rate=0.0):
        return cls(
            delay_ms=env_number(f"{prefix}_DELAY_MS", delay_ms),
            slow_rate=env_number(f"{prefix}_SLOW_RATE", slow_rate),
            slow_ms=env_number(f"{prefix}_SLOW_MS", slow_ms),
            error_rate=env_number(f"{prefix}_ERROR_RATE", error_rate),
        )

    def wait(self) -> None:
        ms = self.delay_ms + (self.slow_ms if random.random() < self.slow_rate else 0.0)
        if ms > 0:
            time.sleep(ms / 1000.0)

    def should_fail(self) -> bool:
        return random.random() < self.error_rate


class HttpError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    body: object


Handler = Callable[[Request], object]

_REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
            500: "Internal Server Error", 502: "Bad Gateway"}


def json_app(service_name: str, routes: dict[str, Handler]):
    """A WSGI app: routes maps "METHOD /path" to a handler returning a JSON-able
    value. A handler raising HttpError answers that status; any other exception
    answers 500, and the server span gets the exception event and ERROR status."""

    def app(environ, start_response):
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/") or "/"
        key = f"{method} {path}"
        span = trace.get_current_span()
        status, payload = 200, None
        handler = routes.get(key)
        if handler is None:
            status, payload = 404, {"error": f"no route {key}"}
        else:
            span.set_attribute("http.route", path)
            try:
                body = None
                length = int(environ.get("CONTENT_LENGTH") or 0)
                if length:
                    try:
                        body = json.loads(environ["wsgi.input"].read(length))
                    except ValueError:
                        raise HttpError(400, "request body is not JSON") from None
                request = Request(method, path, parse_qs(environ.get("QUERY_STRING", "")), body)
                payload = handler(request)
            except HttpError as e:
                status, payload = e.status, {"error": str(e), "service": service_name}
                if e.status >= 500:
                    record_error(span, e)
            except Exception as e:  # noqa: BLE001 - any failure is a 500 with the span marked
                status, payload = 500, {"error": str(e), "service": service_name}
                record_error(span, e)
        data = (json.dumps(payload) + "\n").encode()
        start_response(
            f"{status} {_REASONS.get(status, 'Error')}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
        )
        return [data]

    return app


def record_error(span: trace.Span, error: BaseException) -> None:
    span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, str(error)))


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


def serve(service_name: str, port: int, routes: dict[str, Handler]) -> None:
    """Serves the routes (traced by the OpenTelemetry WSGI middleware) until
    SIGTERM or SIGINT, then flushes the buffered spans."""
    host = os.environ.get("DEMO_BIND_HOST", "127.0.0.1")
    app = OpenTelemetryMiddleware(json_app(service_name, routes))
    server = make_server(host, port, app, server_class=_ThreadingWSGIServer,
                         handler_class=_QuietHandler)

    def stop(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(f"{service_name} listening on http://{host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if _provider is not None:
            _provider.shutdown()
    sys.exit(0)
