'use strict';
// OpenTelemetry setup shared by the Node demo services.
//
// Call start('<service name>') before anything requires node:http: the HTTP
// instrumentation patches the module when it is first required.
//
// Standard OpenTelemetry environment variables apply:
//   OTEL_EXPORTER_OTLP_ENDPOINT  base URL of an OTLP/HTTP receiver (default
//                                http://localhost:4318; /v1/traces is appended)
//   OTEL_SERVICE_NAME            overrides the service name given to start()
//   OTEL_BSP_SCHEDULE_DELAY      batch export delay in ms (default 5000)
//
// The tracer provider registers the W3C trace-context and baggage propagators
// and an AsyncLocalStorage context manager, so a span started in a request
// handler is the parent of the HTTP client spans the handler causes.

const { trace } = require('@opentelemetry/api');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');
const { registerInstrumentations } = require('@opentelemetry/instrumentation');
const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http');
const { defaultResource, resourceFromAttributes } = require('@opentelemetry/resources');
const { BatchSpanProcessor, NodeTracerProvider } = require('@opentelemetry/sdk-trace-node');
const { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } = require('@opentelemetry/semantic-conventions');

let provider = null;

function start(defaultServiceName) {
  if (provider) throw new Error('tracing already started');
  const serviceName = process.env.OTEL_SERVICE_NAME || defaultServiceName;
  provider = new NodeTracerProvider({
    // The SDK's own attributes (telemetry.sdk.language, ...) plus ours.
    resource: defaultResource().merge(
      resourceFromAttributes({
        [ATTR_SERVICE_NAME]: serviceName,
        [ATTR_SERVICE_VERSION]: '0.1.0',
        'deployment.environment.name': process.env.DEMO_ENVIRONMENT || 'demo',
      }),
    ),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
  });
  provider.register();
  registerInstrumentations({
    tracerProvider: provider,
    instrumentations: [
      new HttpInstrumentation({
        // Client spans are named after the method alone by default ("GET");
        // add the path so the UI tells the calls apart ("GET /product").
        requestHook(span, request) {
          if (typeof request.getHeader !== 'function') return; // an incoming request
          const path = String(request.path || '/').split('?')[0];
          span.updateName(`${request.method} ${path}`);
        },
      }),
    ],
  });

  // Flush what is buffered before the process goes away.
  let stopping = false;
  const stop = (signal) => {
    if (stopping) return;
    stopping = true;
    const exitCode = signal === 'SIGINT' ? 130 : 0;
    const timer = setTimeout(() => process.exit(exitCode), 3000);
    timer.unref();
    provider
      .shutdown()
      .catch((err) => console.error(`${serviceName}: flushing spans failed: ${err.message}`))
      .finally(() => process.exit(exitCode));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  return trace.getTracer(serviceName, '0.1.0');
}

module.exports = { start };
