"""Writes the fuzz seed corpora in fuzz/seeds/<target>/ from real client
libraries' encoders (nothing hand-assembled), so the fuzzer starts from the
bytes real clients send. Run with the test virtualenv (tests/e2e/requirements.txt):

    python fuzz/make_seeds.py [--jaeger-python VENV_JAEGER/bin/python]

The optional second interpreter (tests/e2e/requirements-jaeger-exporter.txt)
adds the Jaeger gRPC seed from the OpenTelemetry Jaeger exporter.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

from google.protobuf import json_format

ROOT = pathlib.Path(__file__).resolve().parent / "seeds"


def save(target: str, name: str, data: bytes) -> None:
    d = ROOT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)
    print(f"{target}/{name}: {len(data)} bytes")


def otel_spans():
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import Link, SpanKind, Status, StatusCode

    mem = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "seed", "host.name": "h1"}))
    provider.add_span_processor(SimpleSpanProcessor(mem))
    tracer = provider.get_tracer("seed.scope", "1.0")
    with tracer.start_as_current_span("GET /cart", kind=SpanKind.SERVER,
                                      attributes={"http.status_code": 200, "ratio": 0.5,
                                                  "ok": True, "tags": ["a", "b"]}) as root:
        with tracer.start_as_current_span("SELECT items", kind=SpanKind.CLIENT,
                                          links=[Link(root.get_span_context(), {"why": "x"})]) as c:
            c.add_event("retry", {"attempt": 2})
            c.set_status(Status(StatusCode.ERROR, "timeout"))
    provider.shutdown()
    return mem.get_finished_spans()


def otlp() -> None:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    req = encode_spans(otel_spans())
    save("otlp_protobuf", "sdk-two-spans", req.SerializeToString())
    # OTLP/JSON differs from proto3 JSON in ids (hex, not base64) and enums
    # (integers): convert those fields the way the OTLP/HTTP spec says.
    doc = json_format.MessageToDict(req, use_integers_for_enums=True)
    for rs in doc.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for s in ss.get("spans", []):
                for k in ("traceId", "spanId", "parentSpanId"):
                    if k in s:
                        s[k] = __import__("base64").b64decode(s[k]).hex()
                for link in s.get("links", []):
                    for k in ("traceId", "spanId"):
                        link[k] = __import__("base64").b64decode(link[k]).hex()
    save("otlp_json", "sdk-two-spans.json", json.dumps(doc).encode())


def zipkin() -> None:
    from py_zipkin import Encoding
    from py_zipkin.transport import BaseTransportHandler
    from py_zipkin.zipkin import zipkin_span

    class Capture(BaseTransportHandler):
        def __init__(self):
            self.payloads = []

        def get_max_payload_bytes(self):
            return None

        def send(self, payload):
            self.payloads.append(payload)

    for enc, target in ((Encoding.V2_JSON, "zipkin_v2_json"), (Encoding.V2_PROTO3, "zipkin_v2_proto"),
                        (Encoding.V1_JSON, "zipkin_v1_json")):
        cap = Capture()
        with zipkin_span(service_name="seed", span_name="checkout", transport_handler=cap,
                         sample_rate=100.0, encoding=enc, binary_annotations={"user": "alice"}):
            with zipkin_span(service_name="seed", span_name="charge card",
                             binary_annotations={"amount": "12.5"}) as child:
                child.add_annotation("card.declined")
        payload = cap.payloads[0]
        save(target, "py_zipkin", payload if isinstance(payload, bytes) else payload.encode())


def zipkin_v1_thrift() -> None:
    # py_zipkin dropped v1 Thrift; the body is a binary-protocol list<Span>
    # of zipkincore.thrift, written here by the Thrift library.
    from jaeger_client.thrift_gen.zipkincore import ttypes as z
    from thrift.protocol import TBinaryProtocol
    from thrift.Thrift import TType
    from thrift.transport import TTransport

    now = int(time.time() * 1e6)
    ep = z.Endpoint(ipv4=0x7F000001, port=8080, service_name="seed")
    spans = [z.Span(trace_id=0x1234, name="get", id=0x99, parent_id=None, timestamp=now, duration=300,
                    annotations=[z.Annotation(timestamp=now, value="sr", host=ep),
                                 z.Annotation(timestamp=now + 300, value="ss", host=ep)],
                    binary_annotations=[z.BinaryAnnotation(key="http.path", value="/x",
                                                           annotation_type=z.AnnotationType.STRING, host=ep)],
                    debug=True, trace_id_high=0x55)]
    buf = TTransport.TMemoryBuffer()
    proto = TBinaryProtocol.TBinaryProtocol(buf)
    proto.writeListBegin(TType.STRUCT, len(spans))
    for s in spans:
        s.write(proto)
    proto.writeListEnd()
    save("zipkin_v1_thrift", "thrift-list", buf.getvalue())


def jaeger() -> None:
    from jaeger_client.thrift_gen.agent import Agent
    from jaeger_client.thrift_gen.jaeger import ttypes as j
    from thrift.protocol import TBinaryProtocol, TCompactProtocol
    from thrift.Thrift import TMessageType
    from thrift.transport import TTransport

    now = int(time.time() * 1e6)
    batch = j.Batch(
        process=j.Process(serviceName="seed", tags=[j.Tag(key="hostname", vType=j.TagType.STRING, vStr="h1")]),
        spans=[
            j.Span(traceIdLow=0x1122, traceIdHigh=0x33, spanId=1, parentSpanId=0, operationName="GET /",
                   flags=1, startTime=now, duration=1500,
                   tags=[j.Tag(key="span.kind", vType=j.TagType.STRING, vStr="server"),
                         j.Tag(key="error", vType=j.TagType.BOOL, vBool=True),
                         j.Tag(key="n", vType=j.TagType.LONG, vLong=-7),
                         j.Tag(key="f", vType=j.TagType.DOUBLE, vDouble=0.25),
                         j.Tag(key="b", vType=j.TagType.BINARY, vBinary="\x00\x01")],
                   logs=[j.Log(timestamp=now + 10, fields=[j.Tag(key="event", vType=j.TagType.STRING, vStr="x")])]),
            j.Span(traceIdLow=0x1122, traceIdHigh=0x33, spanId=2, parentSpanId=1, operationName="db",
                   flags=1, startTime=now + 5, duration=700,
                   references=[j.SpanRef(refType=j.SpanRefType.FOLLOWS_FROM, traceIdLow=0x1122,
                                         traceIdHigh=0x33, spanId=1)]),
        ],
    )
    for proto, name in ((TCompactProtocol.TCompactProtocol, "compact"), (TBinaryProtocol.TBinaryProtocol, "binary")):
        # What Agent.Client.send_emitBatch writes: a oneway message around
        # the generated emitBatch_args struct.
        buf = TTransport.TMemoryBuffer()
        oprot = proto(buf)
        oprot.writeMessageBegin("emitBatch", TMessageType.ONEWAY, 1)
        Agent.emitBatch_args(batch=batch).write(oprot)
        oprot.writeMessageEnd()
        save(f"jaeger_agent_{name}", "emitBatch", buf.getvalue())
        buf = TTransport.TMemoryBuffer()
        batch.write(proto(buf))
        save(f"jaeger_http_{name}", "batch", buf.getvalue())


JAEGER_GRPC = r"""
import sys
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.exporter.jaeger.proto.grpc.translate import ProtobufTranslator, Translate
from opentelemetry.exporter.jaeger.proto.grpc.gen import collector_pb2, model_pb2
from opentelemetry.trace import SpanKind
mem = InMemorySpanExporter()
p = TracerProvider()
p.add_span_processor(SimpleSpanProcessor(mem))
t = p.get_tracer("seed")
with t.start_as_current_span("POST /pay", kind=SpanKind.SERVER, attributes={"k": 1, "f": 0.5}):
    with t.start_as_current_span("charge") as c:
        c.add_event("declined", {"code": "51"})
spans = Translate(mem.get_finished_spans())._translate(ProtobufTranslator("seed"))
batch = model_pb2.Batch(spans=spans, process=model_pb2.Process(service_name="seed"))
sys.stdout.buffer.write(collector_pb2.PostSpansRequest(batch=batch).SerializeToString())
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jaeger-python")
    args = ap.parse_args()
    otlp()
    zipkin()
    zipkin_v1_thrift()
    jaeger()
    if args.jaeger_python:
        env = dict(os.environ, PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION="python")
        out = subprocess.run([args.jaeger_python, "-c", JAEGER_GRPC], env=env, check=True,
                             capture_output=True).stdout
        save("jaeger_grpc", "otel-exporter", out)


if __name__ == "__main__":
    sys.exit(main())
