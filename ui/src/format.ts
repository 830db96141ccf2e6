// Formatting of durations and times. Durations are in microseconds, as in
// Jaeger JSON.

export function formatDuration(us: number): string {
  if (!Number.isFinite(us)) return '–';
  const abs = Math.abs(us);
  if (abs < 1000) return `${trim(us, abs < 10 ? 2 : abs < 100 ? 1 : 0)}µs`;
  if (abs < 1_000_000) return `${trim(us / 1000, abs < 10_000 ? 2 : abs < 100_000 ? 1 : 0)}ms`;
  if (abs < 60_000_000) return `${trim(us / 1_000_000, 2)}s`;
  if (abs < 3_600_000_000) {
    const m = Math.floor(abs / 60_000_000);
    const s = Math.round((abs % 60_000_000) / 1_000_000);
    return `${us < 0 ? '-' : ''}${m}m${s ? ` ${s}s` : ''}`;
  }
  const h = Math.floor(abs / 3_600_000_000);
  const m = Math.round((abs % 3_600_000_000) / 60_000_000);
  return `${us < 0 ? '-' : ''}${h}h${m ? ` ${m}m` : ''}`;
}

function trim(n: number, digits: number): string {
  return Number(n.toFixed(digits)).toString();
}

/** A duration in the query syntax ("1.2ms", "500us", "2s"): µs, or null. */
export function parseDuration(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s|m|h)\s*$/.exec(text);
  if (!m) return null;
  const scale: Record<string, number> = {
    ns: 0.001,
    us: 1,
    'µs': 1,
    ms: 1000,
    s: 1e6,
    m: 6e7,
    h: 3.6e9,
  };
  return Number(m[1]) * scale[m[2]];
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

// Times are shown in the browser's zone or in UTC; the choice is kept in
// localStorage and applies to every page.
const TZ_KEY = 'waymark.timeZone';
export type TimeZoneMode = 'local' | 'utc';
let tzMode: TimeZoneMode = readTz();
const tzListeners = new Set<() => void>();

function readTz(): TimeZoneMode {
  try {
    return globalThis.localStorage?.getItem(TZ_KEY) === 'utc' ? 'utc' : 'local';
  } catch {
    return 'local';
  }
}

export const timeZoneMode = () => tzMode;

export function setTimeZoneMode(mode: TimeZoneMode) {
  tzMode = mode;
  try {
    globalThis.localStorage?.setItem(TZ_KEY, mode);
  } catch {
    // private mode: the choice lasts for this page only
  }
  tzListeners.forEach((l) => l());
}

export function onTimeZoneChange(l: () => void): () => void {
  tzListeners.add(l);
  return () => void tzListeners.delete(l);
}

/** Calendar fields of a Date in the chosen zone. */
function fields(d: Date, mode = tzMode) {
  return mode === 'utc'
    ? { y: d.getUTCFullYear(), mo: d.getUTCMonth(), d: d.getUTCDate(), h: d.getUTCHours(), mi: d.getUTCMinutes(), s: d.getUTCSeconds(), ms: d.getUTCMilliseconds() }
    : { y: d.getFullYear(), mo: d.getMonth(), d: d.getDate(), h: d.getHours(), mi: d.getMinutes(), s: d.getSeconds(), ms: d.getMilliseconds() };
}

/** Date and time with milliseconds in the chosen zone ("… UTC" in UTC), from µs since the epoch. */
export function formatDateTime(us: number, mode = tzMode): string {
  const f = fields(new Date(us / 1000), mode);
  return (
    `${f.y}-${pad(f.mo + 1)}-${pad(f.d)} ${pad(f.h)}:${pad(f.mi)}:${pad(f.s)}.${pad(f.ms, 3)}` +
    (mode === 'utc' ? ' UTC' : '')
  );
}

export function formatClock(ms: number, withSeconds = true, withMillis = false): string {
  const f = fields(new Date(ms));
  const s = withSeconds ? `:${pad(f.s)}${withMillis ? `.${pad(f.ms, 3)}` : ''}` : '';
  return `${pad(f.h)}:${pad(f.mi)}${s}`;
}

/** "3 minutes ago", from µs since the epoch. */
export function formatRelative(us: number, nowMs = Date.now()): string {
  const diffS = (us / 1000 - nowMs) / 1000;
  const abs = Math.abs(diffS);
  const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
  if (abs < 45) return rtf.format(Math.round(diffS), 'second');
  if (abs < 2700) return rtf.format(Math.round(diffS / 60), 'minute');
  if (abs < 79200) return rtf.format(Math.round(diffS / 3600), 'hour');
  return rtf.format(Math.round(diffS / 86400), 'day');
}

/** Lookback choices of the search and dependency pages. */
export const LOOKBACKS: { value: string; label: string; ms: number }[] = [
  { value: '5m', label: 'Last 5 minutes', ms: 5 * 60e3 },
  { value: '15m', label: 'Last 15 minutes', ms: 15 * 60e3 },
  { value: '30m', label: 'Last 30 minutes', ms: 30 * 60e3 },
  { value: '1h', label: 'Last hour', ms: 3600e3 },
  { value: '2h', label: 'Last 2 hours', ms: 2 * 3600e3 },
  { value: '6h', label: 'Last 6 hours', ms: 6 * 3600e3 },
  { value: '12h', label: 'Last 12 hours', ms: 12 * 3600e3 },
  { value: '24h', label: 'Last 24 hours', ms: 24 * 3600e3 },
  { value: '2d', label: 'Last 2 days', ms: 2 * 86400e3 },
  { value: '7d', label: 'Last 7 days', ms: 7 * 86400e3 },
  { value: '2w', label: 'Last 2 weeks', ms: 14 * 86400e3 },
  { value: '4w', label: 'Last 4 weeks', ms: 28 * 86400e3 },
];

export function lookbackMs(value: string): number | null {
  return LOOKBACKS.find((l) => l.value === value)?.ms ?? null;
}

/** `<input type=datetime-local>` value (in the chosen zone) from ms since the epoch, and back. */
export function toLocalInput(ms: number): string {
  const f = fields(new Date(ms));
  return `${f.y}-${pad(f.mo + 1)}-${pad(f.d)}T${pad(f.h)}:${pad(f.mi)}`;
}

export function fromLocalInput(value: string): number | null {
  if (!value) return null;
  const ms = new Date(tzMode === 'utc' ? `${value}Z` : value).getTime();
  return Number.isFinite(ms) ? ms : null;
}

export function formatValue(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export function plural(n: number, word: string, many = `${word}s`): string {
  return `${n.toLocaleString('en-US')} ${n === 1 ? word : many}`;
}
