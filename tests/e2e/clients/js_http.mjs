// OpenTelemetry JS SDK -> OTLP/HTTP JSON exporter (@opentelemetry/exporter-trace-otlp-http).
//
// Endpoint from the standard env var OTEL_EXPORTER_OTLP_ENDPOINT (e.g.
// http://127.0.0.1:4318; the exporter appends /v1/traces).
//
// Emits the same scenario as clients/py_common.py and prints the same JSON
// document.  The document is built from the exact JSON request body the
// exporter sends (re-serialized with the exporter's own JsonTraceSerializer),
// so it reflects everything the SDK did: default resource attributes, and number
// typing (a JS number that is an integer is sent as intValue, others as
// doubleValue, so 2.0 cannot be sent as a double).  JS cannot hold
// 9007199254740993, so the big ints here are exactly representable values
// beyond 2^53; note JSON.stringify writes 2**62 as 4611686018427388000, and that
// is the integer a receiver must store.  The JS SDK rejects Uint8Array and map
// span attributes, so (as with the Python SDK) no bytes/kvlist attributes are sent.

import { randomUUID } from 'node:crypto';

import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { ExportResultCode, TraceState } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { JsonTraceSerializer } from '@opentelemetry/otlp-transformer';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  SamplingDecision,
} from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';

const CLIENT = 'js-http';
const ROOT_OPERATION = 'GET /checkout';
const CLIENT_OPERATION = 'POST /payments';
const INTERNAL_OPERATION = 'charge card';
const PRODUCER_OPERATION = 'publish order-created';
const MAIN_TRACE_STATE = 'waymark=e2e,vendor=x1';

// Delegates to the real exporter and remembers every request body and result.
class RecordingExporter {
  constructor(inner) {
    this.inner = inner;
    this.bodies = [];
    this.results = [];
  }
  export(spans, resultCallback) {
    this.bodies.push(new TextDecoder().decode(JsonTraceSerializer.serializeRequest(spans)));
    this.inner.export(spans, (result) => {
      this.results.push(result);
      resultCallback(result);
    });
  }
  // Shared by two providers: the script shuts the real exporter down once.
  shutdown() {
    return Promise.resolve();
  }
  forceFlush() {
    return this.inner.forceFlush ? this.inner.forceFlush() : Promise.resolve();
  }
}

// Samples everything; the main trace's root gets a W3C trace state that its
// descendants inherit (the SDK copies the parent's); the producer trace gets none.
const scenarioSampler = {
  shouldSample(context, traceId, name) {
    const parent = trace.getSpanContext(context);
    const isRoot = !parent || !trace.isSpanContextValid(parent);
    return {
      decision: SamplingDecision.RECORD_AND_SAMPLED,
      traceState: isRoot && name === ROOT_OPERATION ? new TraceState(MAIN_TRACE_STATE) : undefined,
    };
  },
  toString() {
    return 'e2e-scenario-sampler';
  },
};

// ---------------------------------------------------------------------------
// OTLP JSON request body -> normalized document (see clients/py_common.py)
// ---------------------------------------------------------------------------

const toBigInt = (v) => {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) && !Number.isInteger(v)) throw new Error(`not an integer: ${v}`);
    return BigInt(v);
  }
  if (typeof v === 'string') return BigInt(v);
  if (v && typeof v === 'object' && 'low' in v && 'high' in v) {
    return (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0);
  }
  if (v === undefined || v === null) return 0n;
  throw new Error(`cannot read integer from ${JSON.stringify(v)}`);
};

function anyValue(v) {
  if ('stringValue' in v) return { type: 'string', value: v.stringValue };
  if ('boolValue' in v) return { type: 'bool', value: v.boolValue };
  if ('intValue' in v) return { type: 'int', value: toBigInt(v.intValue) };
  if ('doubleValue' in v) return { type: 'double', value: v.doubleValue };
  if ('bytesValue' in v) return { type: 'bytes', value: v.bytesValue };
  if ('arrayValue' in v) return { type: 'array', value: (v.arrayValue.values ?? []).map(anyValue) };
  if ('kvlistValue' in v) return { type: 'kvlist', value: attributes(v.kvlistValue.values) };
  throw new Error(`empty AnyValue in request: ${JSON.stringify(v)}`);
}

function attributes(kvs) {
  return (kvs ?? []).map((kv) => ({ key: kv.key, ...anyValue(kv.value) }));
}

function normalizeRequest(body) {
  const spans = [];
  for (const rs of body.resourceSpans ?? []) {
    const resource = attributes(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      const scope = { name: ss.scope?.name ?? '', version: ss.scope?.version ?? '' };
      for (const s of ss.spans ?? []) {
        spans.push({
          trace_id: s.traceId,
          span_id: s.spanId,
          parent_span_id: s.parentSpanId ?? '',
          trace_state: s.traceState ?? '',
          flags: Number(s.flags ?? 0),
          name: s.name,
          kind: s.kind ?? 0,
          start_ns: toBigInt(s.startTimeUnixNano),
          end_ns: toBigInt(s.endTimeUnixNano),
          attributes: attributes(s.attributes),
          events: (s.events ?? []).map((e) => ({
            time_ns: toBigInt(e.timeUnixNano),
            name: e.name,
            attributes: attributes(e.attributes),
          })),
          links: (s.links ?? []).map((l) => ({
            trace_id: l.traceId,
            span_id: l.spanId,
            trace_state: l.traceState ?? '',
            attributes: attributes(l.attributes),
          })),
          status: { code: s.status?.code ?? 0, message: s.status?.message ?? '' },
          resource,
          scope,
        });
      }
    }
  }
  return spans;
}

// JSON.parse that keeps intValue numbers exact: the body text is what went on
// the wire, and JSON.stringify writes e.g. 2**62 as 4611686018427388000, which
// a receiver reads as that exact integer (not as 2**62).
function parseExact(text) {
  const quoted = text.replace(/(?<!\\)"intValue":(-?\d+)/g, '"intValue":"$1"');
  return JSON.parse(quoted);
}

// JSON.stringify with BigInts written as exact JSON integers.
function stringifyExact(doc) {
  const marker = '__e2e_bigint__';
  const text = JSON.stringify(
    doc,
    (_k, v) => (typeof v === 'bigint' ? `${marker}${v.toString()}` : v),
    1,
  );
  return text.replace(new RegExp(`"${marker}(-?\\d+)"`, 'g'), '$1');
}

// ---------------------------------------------------------------------------
// the scenario
// ---------------------------------------------------------------------------

async function main() {
  const runId = randomUUID().replaceAll('-', '');
  const service = `e2e-${CLIENT}`;
  const paymentsService = `${service}-payments`;

  const exporter = new OTLPTraceExporter();
  const recorder = new RecordingExporter(exporter);

  const providerA = new BasicTracerProvider({
    sampler: scenarioSampler,
    resource: defaultResource().merge(resourceFromAttributes({
      [ATTR_SERVICE_NAME]: service,
      'e2e.run_id': runId,
      'e2e.client': CLIENT,
      'e2e.resource.int': 7,
      'e2e.resource.bool': true,
    })),
    spanProcessors: [new BatchSpanProcessor(recorder)],
  });
  const providerB = new BasicTracerProvider({
    sampler: scenarioSampler,
    resource: defaultResource().merge(resourceFromAttributes({
      [ATTR_SERVICE_NAME]: paymentsService,
      'e2e.run_id': runId,
      'e2e.resource.double': 0.5,
    })),
    spanProcessors: [new BatchSpanProcessor(recorder)],
  });
  const tracerA = providerA.getTracer('e2e.checkout', '1.2.3');
  const tracerB = providerB.getTracer('e2e.payments', '0.9.0');

  // Explicit HrTime timestamps [seconds, nanoseconds]: whole seconds a little
  // in the past, plus fixed microsecond offsets and a sub-microsecond remainder.
  const baseSec = Math.floor(Date.now() / 1000) - 5;
  const t = (micros, subMicroNs) => [
    baseSec + Math.floor(micros / 1_000_000),
    (micros % 1_000_000) * 1000 + subMicroNs,
  ];

  const producer = tracerA.startSpan(PRODUCER_OPERATION, {
    kind: SpanKind.PRODUCER,
    startTime: t(0, 321),
    attributes: { 'messaging.system': 'e2e-queue', 'messaging.destination.name': 'orders' },
  }, ROOT_CONTEXT);
  producer.end(t(5_000, 654));

  const root = tracerA.startSpan(ROOT_OPERATION, {
    kind: SpanKind.SERVER,
    startTime: t(10_000, 123),
    attributes: {
      'http.request.method': 'GET',
      'http.route': '/checkout',
      'http.response.status_code': 402,
      'e2e.order_id': `order-${runId}`,
      'e2e.str': 'héllo wörld ✓',
      'e2e.str_empty': '',
      'e2e.bool': true,
      'e2e.bool_false': false,
      'e2e.int': 42,
      'e2e.int_neg': -7,
      'e2e.int_big': 9007199254740994, // 2^53 + 2, exactly representable
      'e2e.int_big_neg': -9007199254740994,
      'e2e.int_max': 2 ** 62, // JSON.stringify writes 4611686018427388000
      'e2e.double': 3.14159,
      'e2e.double_neg': -0.5,
      'e2e.str_array': ['a', 'b"q', 'ü'],
      'e2e.int_array': [1, -2, 9007199254740994],
      'e2e.bool_array': [true, false],
      'e2e.double_array': [1.5, -2.25],
    },
  }, ROOT_CONTEXT);
  root.addEvent('request.received', {
    'e2e.event.str': 'cart-17',
    'e2e.event.int': 3,
    'e2e.event.bool': true,
    'e2e.event.double': 0.25,
    'e2e.event.str_array': ['x', 'y'],
  }, t(11_000, 777));

  const rootCtx = trace.setSpan(ROOT_CONTEXT, root);
  const clientSpan = tracerA.startSpan(CLIENT_OPERATION, {
    kind: SpanKind.CLIENT,
    startTime: t(20_000, 5),
    attributes: {
      'http.request.method': 'POST',
      'server.address': 'payments.internal',
      'server.port': 8443,
    },
    links: [{
      context: producer.spanContext(),
      attributes: { 'e2e.link.reason': 'triggered-by', 'e2e.link.n': 1 },
    }],
  }, rootCtx);
  clientSpan.addEvent('retry', { attempt: 2 }, t(21_000, 1));

  const childCtx = trace.setSpan(ROOT_CONTEXT, clientSpan);
  const internal = tracerB.startSpan(INTERNAL_OPERATION, {
    kind: SpanKind.INTERNAL,
    startTime: t(30_000, 100),
    attributes: { 'payment.amount': 19.99, 'payment.currency': 'EUR' },
  }, childCtx);
  internal.addEvent('card.validated', undefined, t(31_000, 2));
  internal.end(t(230_000, 200));

  clientSpan.setStatus({ code: SpanStatusCode.OK });
  clientSpan.end(t(240_000, 995));

  const err = new Error('card declined by issuer');
  err.name = 'PaymentDeclined';
  root.recordException(err, t(250_000, 999));
  root.setStatus({ code: SpanStatusCode.ERROR, message: 'payment declined' });
  root.end(t(260_000, 456));

  let ok = true;
  for (const p of [providerA, providerB]) {
    await p.forceFlush();
  }
  for (const p of [providerA, providerB]) {
    await p.shutdown();
  }
  await exporter.shutdown();

  if (recorder.results.length === 0) {
    console.error(`${CLIENT}: nothing was exported`);
    ok = false;
  }
  for (const r of recorder.results) {
    if (r.code !== ExportResultCode.SUCCESS) {
      console.error(`${CLIENT}: export failed: code=${r.code} error=${r.error}`);
      ok = false;
    }
  }

  const spans = recorder.bodies.flatMap((b) => normalizeRequest(parseExact(b)));
  const doc = {
    client: CLIENT,
    transport: 'otlp-http-json',
    run_id: runId,
    main_trace_id: root.spanContext().traceId,
    linked_trace_id: producer.spanContext().traceId,
    services: [service, paymentsService],
    export_requests: recorder.bodies.length,
    spans,
  };
  process.stdout.write(stringifyExact(doc) + '\n');
  process.exitCode = ok ? 0 : 1;
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
