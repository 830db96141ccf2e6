// A stable colour per service, the same on every page.

// Distinct hues; none red, which marks errors.
const PALETTE = [
  '#3b82f6', '#f59e0b', '#10b981', '#a855f7', '#ec4899', '#06b6d4',
  '#84cc16', '#f97316', '#6366f1', '#0d9488', '#a16207', '#64748b',
];

export function serviceColor(name: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return PALETTE[(h >>> 0) % PALETTE.length];
}
