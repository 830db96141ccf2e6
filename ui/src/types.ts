// Jaeger JSON as served by Waymark's /api endpoints.

export interface KeyValue {
  key: string;
  type: string;
  value: unknown;
}

export interface SpanLog {
  timestamp: number; // µs since the epoch
  fields: KeyValue[] | null;
}

export interface SpanReference {
  refType: 'CHILD_OF' | 'FOLLOWS_FROM' | string;
  traceID: string;
  spanID: string;
}

export interface JaegerSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  references: SpanReference[] | null;
  startTime: number; // µs since the epoch
  duration: number; // µs
  tags: KeyValue[] | null;
  logs: SpanLog[] | null;
  processID: string;
  warnings: string[] | null;
  flags?: number;
}

export interface JaegerProcess {
  serviceName: string;
  tags: KeyValue[] | null;
}

export interface JaegerTrace {
  traceID: string;
  spans: JaegerSpan[];
  processes: Record<string, JaegerProcess>;
  warnings?: string[] | null;
}

export interface Operation {
  name: string;
  spanKind: string;
}

export interface DependencyLink {
  parent: string;
  child: string;
  callCount: number;
  errorCount?: number;
}
