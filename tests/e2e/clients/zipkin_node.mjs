// Zipkin's JS tracer (npm `zipkin`) with its HTTP transport (npm
// `zipkin-transport-http`), Zipkin v2 JSON, -> Waymark's Zipkin port.
//
//   node clients/zipkin_node.mjs <http://host:port/api/v2/spans> <service>
//
// Emits one trace with a 128-bit id: a SERVER root span (local address, client
// address, tags), a CLIENT child (remote service/address/port, an `error` tag,
// a plain tag and an annotation) and a local span (no kind) with a tag.  The
// recorder hands finished spans to the HttpLogger; the script then makes the
// logger post its queue and waits for the answer.  The fetch implementation the
// logger uses is wrapped so that the exact request body (the v2 JSON span
// list) and the response status are recorded; the script prints, as one JSON
// line: {"url", "status", "trace_id", "spans": <the posted span list>}.

import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { Annotation, BatchRecorder, ExplicitContext, InetAddress, Tracer, jsonEncoder } = require('zipkin');
const { HttpLogger } = require('zipkin-transport-http');

// A synchronous pause, so that spans get measurable durations.
function pause(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

async function main() {
  const [endpoint, service] = process.argv.slice(2);
  if (!endpoint || !service) {
    console.error('usage: zipkin_node.mjs <endpoint> <service>');
    process.exit(2);
  }

  const posts = [];
  const recordingFetch = async (url, options) => {
    const post = { url, body: options.body, status: null };
    posts.push(post);
    const res = await globalThis.fetch(url, options);
    post.status = res.status;
    return res;
  };

  const logger = new HttpLogger({
    endpoint,
    jsonEncoder: jsonEncoder.JSON_V2,
    httpInterval: 60000, // the only post is the explicit one below
    fetchImplementation: recordingFetch,
  });
  const recorder = new BatchRecorder({ logger });
  const tracer = new Tracer({
    ctxImpl: new ExplicitContext(),
    recorder,
    localServiceName: service,
    traceId128Bit: true,
  });

  let traceId;
  tracer.scoped(() => {
    const rootId = tracer.createRootId();
    traceId = rootId.traceId;
    tracer.setId(rootId);
    tracer.recordServiceName(service);
    tracer.recordRpc('POST /Checkout');
    tracer.recordAnnotation(new Annotation.ServerRecv());
    tracer.recordLocalAddr({ host: new InetAddress('10.0.0.5'), port: 8080 });
    tracer.recordClientAddr({ host: new InetAddress('192.0.2.7'), port: 51234 });
    tracer.recordBinary('http.path', '/checkout');
    tracer.recordBinary('http.status_code', 200); // zipkin-js stringifies tag values
    pause(2);

    tracer.scoped(() => {
      tracer.setId(tracer.createChildId());
      tracer.recordServiceName(service);
      tracer.recordRpc('charge card');
      tracer.recordAnnotation(new Annotation.ClientSend());
      tracer.recordAnnotation(new Annotation.ServerAddr({
        serviceName: 'payments', host: new InetAddress('10.1.2.3'), port: 8443,
      }));
      tracer.recordBinary('amount', '12.50');
      pause(1);
      tracer.recordMessage('retrying');
      pause(1);
      tracer.recordBinary('error', 'card declined');
      tracer.recordAnnotation(new Annotation.ClientRecv());
    });

    tracer.local('compute tax', () => {
      tracer.recordBinary('tax.rate', '0.2');
      pause(1);
    });

    pause(1);
    tracer.recordAnnotation(new Annotation.ServerSend());
  });

  // All three spans finished, so the recorder has handed them to the logger.
  const outcome = new Promise((resolve, reject) => {
    logger.on('success', resolve);
    logger.on('error', reject);
  });
  logger.processQueue(logger.fetchImplementation);
  await Promise.race([
    outcome,
    new Promise((_, reject) => setTimeout(() => reject(new Error('no answer within 8 s')), 8000)),
  ]);

  if (posts.length !== 1) {
    throw new Error(`expected one POST, saw ${posts.length}`);
  }
  const [post] = posts;
  process.stdout.write(`${JSON.stringify({
    url: post.url,
    status: post.status,
    trace_id: traceId,
    spans: JSON.parse(post.body),
  })}\n`);
}

main().then(() => process.exit(0), (e) => {
  console.error(e);
  process.exit(1);
});
