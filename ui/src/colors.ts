// A stable colour per service, the same on every page.

const PALETTE = [
  '#3b82f6', '#f59e0b', '#10b981', '#a855f7', '#ec4899', '#06b6d4',
  '#84cc16', '#f97316', '#6366f1', '#14b8a6', '#eab308', '#8b5cf6',
  '#0ea5e9', '#d946ef', '#22c55e', '#fb7185',
];

export function serviceColor(name: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return PALETTE[(h >>> 0) % PALETTE.length];
}
