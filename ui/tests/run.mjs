// npm test: compiles the unit tests (TypeScript) with esbuild, then runs them
// and the end-to-end tests with Node's test runner.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = mkdtempSync(join(tmpdir(), 'waymark-ui-unit-'));
const unit = readdirSync(join(here, 'unit')).filter((f) => f.endsWith('.test.ts'));
await build({
  entryPoints: unit.map((f) => join(here, 'unit', f)),
  outdir: out,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  format: 'esm',
  platform: 'node',
  packages: 'external',
  logLevel: 'warning',
});
const only = process.argv.slice(2); // e.g. `npm test -- unit`
const files = [];
if (!only.length || only.includes('unit')) files.push(...unit.map((f) => join(out, f.replace(/\.ts$/, '.mjs'))));
if (!only.length || only.includes('e2e')) files.push(join(here, 'e2e.test.mjs'));
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...files], { stdio: 'inherit' });
rmSync(out, { recursive: true, force: true });
process.exit(r.status ?? 1);
