// Jaeger's official Node client (npm `jaeger-client`) -> Waymark's Jaeger endpoints.
//
//   node clients/jaeger_node.mjs udp  <host> <port> <service>   agent UDP port, Thrift binary
//   node clients/jaeger_node.mjs http <url> <service>           collector POST /api/traces
//
// Emits one trace (a server root span and a client child span), closes the
// tracer (which flushes the reporter and closes the sender) and prints, as one
// JSON line, exactly what went out: the sender is wrapped so that every span
// handed to it is recorded in the Thrift form the client serializes (ids,
// µs timestamps and typed tags as the client computed them).  Notes on the
// client's behaviour that the printed document reflects:
//   * every JS number becomes a DOUBLE tag (integers included);
//   * a root span carries the ConstSampler's `sampler.type`/`sampler.param` tags;
//   * the tracer adds process tags `jaeger.version`, `hostname`, `ip`, `client-uuid`;
//   * times are ms floats; the client multiplies them by 1000 into int64 µs.
// The udp run uses 64-bit trace ids and `childOf` (parentSpanId only); the http
// run uses 128-bit trace ids and an explicit CHILD_OF reference (parentSpanId
// plus a reference to the same span).

import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const jaeger = require('jaeger-client');
const UDPSender = require('jaeger-client/dist/src/reporters/udp_sender.js').default;
const HTTPSender = require('jaeger-client/dist/src/reporters/http_sender.js').default;

const { opentracing } = jaeger;

const THRIFT_TYPES = { STRING: 'string', DOUBLE: 'float64', BOOL: 'bool', LONG: 'int64', BINARY: 'binary' };

const hex = (buf) => Buffer.from(buf).toString('hex');
const isZero = (buf) => Buffer.from(buf).every((b) => b === 0);
const int64 = (buf) => Number(Buffer.from(buf).readBigInt64BE(0));

function traceIdHex(low, high) {
  // As the Jaeger API prints it: 16 hex digits when the high half is zero.
  return isZero(high) ? hex(low) : hex(high) + hex(low);
}

function tagValue(t) {
  switch (t.vType) {
    case 'STRING': return t.vStr;
    case 'DOUBLE': return t.vDouble;
    case 'BOOL': return t.vBool;
    case 'LONG': return int64(t.vLong);
    case 'BINARY': return Buffer.from(t.vBinary).toString('base64');
    default: throw new Error(`unknown tag type ${t.vType}`);
  }
}

const tags = (list) => list.map((t) => ({ key: t.key, type: THRIFT_TYPES[t.vType], value: tagValue(t) }));

function describe(s) {
  return {
    trace_id: traceIdHex(s.traceIdLow, s.traceIdHigh),
    span_id: hex(s.spanId),
    parent_id: isZero(s.parentSpanId) ? '' : hex(s.parentSpanId),
    references: s.references.map((r) => ({
      refType: r.refType,
      traceID: traceIdHex(r.traceIdLow, r.traceIdHigh),
      spanID: hex(r.spanId),
    })),
    name: s.operationName,
    flags: s.flags,
    start_us: int64(s.startTime),
    duration_us: int64(s.duration),
    tags: tags(s.tags),
    logs: s.logs.map((l) => ({ timestamp_us: int64(l.timestamp), fields: tags(l.fields) })),
  };
}

function usage() {
  console.error('usage: jaeger_node.mjs udp <host> <port> <service> | http <url> <service>');
  process.exit(2);
}

async function main() {
  const [mode, ...args] = process.argv.slice(2);
  const errors = [];
  const logger = {
    info: (msg) => console.error(`[jaeger-client] ${msg}`),
    error: (msg) => {
      errors.push(String(msg));
      console.error(`[jaeger-client] ERROR ${msg}`);
    },
  };

  let sender;
  let service;
  if (mode === 'udp' && args.length === 3) {
    sender = new UDPSender({ host: args[0], port: Number(args[1]), logger });
    service = args[2];
  } else if (mode === 'http' && args.length === 2) {
    sender = new HTTPSender({ endpoint: args[0], logger, timeoutMs: 5000 });
    service = args[1];
  } else {
    usage();
  }

  // Record what the reporter hands the sender (the Thrift-shaped span objects).
  const sentSpans = [];
  let sentProcess = null;
  const append = sender.append.bind(sender);
  sender.append = (span, cb) => {
    sentSpans.push(span);
    return append(span, cb);
  };
  const setProcess = sender.setProcess.bind(sender);
  sender.setProcess = (proc) => {
    sentProcess = proc;
    return setProcess(proc);
  };

  // A long flush interval: the only flush is the one tracer.close() does.
  const reporter = new jaeger.RemoteReporter(sender, { logger, bufferFlushInterval: 60000 });
  const tracer = new jaeger.Tracer(service, reporter, new jaeger.ConstSampler(true), {
    logger,
    traceId128bit: mode === 'http',
    tags: { 'deployment.env': 'e2e', 'build.number': 42 },
  });

  const root = tracer.startSpan('GET /orders/{id}', {
    tags: {
      [opentracing.Tags.SPAN_KIND]: opentracing.Tags.SPAN_KIND_RPC_SERVER,
      'http.method': 'GET',
      'http.status_code': 200,
      'queue.ratio': 0.625,
      'cache.hit': true,
    },
  });
  root.setTag('request.digest', Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0x7f]));

  // The child uses explicit sub-millisecond times (ms floats, exact in binary).
  const t0 = Math.floor(Date.now()) + 0.25;
  const childOpts = {
    startTime: t0,
    tags: {
      [opentracing.Tags.SPAN_KIND]: opentracing.Tags.SPAN_KIND_RPC_CLIENT,
      'peer.service': 'inventory',
      'db.rows': -3,
      'retry.backoff': 1.5,
      [opentracing.Tags.ERROR]: true,
    },
  };
  if (mode === 'http') {
    childOpts.references = [opentracing.childOf(root.context())];
  } else {
    childOpts.childOf = root;
  }
  const child = tracer.startSpan('SELECT inventory', childOpts);
  if (mode === 'http') {
    // event not first: the Jaeger API lists `event` first.
    child.log({ 'retry.attempt': 2, event: 'retry', message: 'timeout after 50ms' }, t0 + 1.5);
  } else {
    child.log({ event: 'retry', 'retry.attempt': 2, message: 'timeout after 50ms' }, t0 + 1.5);
  }
  child.finish(t0 + 3.125);

  await new Promise((r) => setTimeout(r, 5));
  root.finish();

  await new Promise((resolve) => tracer.close(resolve));

  if (errors.length) {
    console.error(`jaeger-client reported errors: ${JSON.stringify(errors)}`);
    process.exit(1);
  }
  const spans = sentSpans.map(describe);
  const doc = {
    sender: mode,
    trace_id: spans[0].trace_id,
    process: { serviceName: sentProcess.serviceName, tags: tags(sentProcess.tags) },
    spans,
  };
  process.stdout.write(`${JSON.stringify(doc)}\n`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
