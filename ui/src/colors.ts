// A colour per service, the same on every page. Services the server knows
// get distinct palette colours in name order (registered once the service
// list arrives); any other name (an uploaded trace, a service that appeared
// since) gets a hue from a hash of its name.

// Distinct hues; none red, which marks errors.
const PALETTE = [
  '#3b82f6', '#f59e0b', '#10b981', '#a855f7', '#ec4899', '#06b6d4',
  '#84cc16', '#f97316', '#6366f1', '#0d9488', '#a16207', '#64748b',
];

const assigned = new Map<string, string>();

function hash(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Assigns palette colours to the server's services, in name order. */
export function registerServices(names: string[]): void {
  assigned.clear();
  [...new Set(names)].sort().forEach((n, i) => {
    if (i < PALETTE.length) assigned.set(n, PALETTE[i]);
  });
}

export function serviceColor(name: string): string {
  const known = assigned.get(name);
  if (known) return known;
  // Hues 20..340 skip the reds that mark errors.
  return `hsl(${20 + (hash(name) % 320)}, 62%, 47%)`;
}
