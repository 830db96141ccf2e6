// Tags in logfmt (`error=true http.status_code=500 msg="a b"`), as typed in
// the search form, to and from the object that /api/traces takes as `tags`.

export type LogfmtResult = { ok: true; tags: Record<string, string> } | { ok: false; error: string };

export function parseLogfmt(input: string): LogfmtResult {
  const tags: Record<string, string> = {};
  let i = 0;
  const n = input.length;
  while (i < n) {
    while (i < n && /\s/.test(input[i])) i++;
    if (i >= n) break;
    let key = '';
    while (i < n && input[i] !== '=' && !/\s/.test(input[i])) key += input[i++];
    if (input[i] !== '=') return { ok: false, error: `"${key}" has no value: write key=value` };
    if (!key) return { ok: false, error: `a value at position ${i + 1} has no key` };
    i++; // '='
    let value = '';
    if (input[i] === '"') {
      i++;
      let closed = false;
      while (i < n) {
        const c = input[i++];
        if (c === '\\' && i < n) {
          value += input[i++];
        } else if (c === '"') {
          closed = true;
          break;
        } else {
          value += c;
        }
      }
      if (!closed) return { ok: false, error: `the quoted value of "${key}" is not closed` };
      if (i < n && !/\s/.test(input[i])) return { ok: false, error: `put a space after the quoted value of "${key}"` };
    } else {
      while (i < n && !/\s/.test(input[i])) value += input[i++];
    }
    tags[key] = value;
  }
  return { ok: true, tags };
}

export function toLogfmt(tags: Record<string, string>): string {
  return Object.entries(tags)
    .map(([k, v]) => `${k}=${v === '' || /[\s"\\]/.test(v) ? `"${v.replace(/["\\]/g, (c) => `\\${c}`)}"` : v}`)
    .join(' ');
}
