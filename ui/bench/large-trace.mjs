// Large-trace benchmark: posts a 10,000-span trace to a real waymark server,
// opens /trace/{id} in headless Chromium five times, and prints the time from
// the trace API response arriving (performance mark `trace-data`) to the
// header and first timeline rows being in the DOM (`trace-rendered`), and to
// the next paint. Target: p50 under 200 ms.
//
//   WAYMARK_BIN=../target/release/waymark node bench/large-trace.mjs [spans] [runs]

import { hex, largeTrace, launchBrowser, postOtlp, startUi, startWaymark, waitForTrace } from '../tests/harness.mjs';

const SPANS = Number(process.argv[2] ?? 10_000);
const RUNS = Number(process.argv[3] ?? 5);
const TARGET_MS = 200;
const traceId = `be${hex(Date.now(), 30)}`;

const server = await startWaymark();
const ui = await startUi(server);
const browser = await launchBrowser();
try {
  await postOtlp(server, largeTrace(traceId, SPANS));
  await waitForTrace(server, traceId, SPANS);

  const p50 = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  const rendered = [];
  const painted = [];
  for (let run = 0; run < RUNS; run++) {
    const page = await browser.context.newPage();
    await page.goto(`${ui.url}/trace/${traceId}`);
    await page.waitForFunction(() => performance.getEntriesByName('trace-paint').length > 0, null, { timeout: 30000 });
    const r = await page.evaluate(() => ({
      render: performance.getEntriesByName('trace-render')[0].duration,
      paint: performance.getEntriesByName('trace-paint')[0].duration,
      rows: document.querySelectorAll('.tl-row').length,
      count: document.querySelector('[data-testid=trace-span-count]').textContent,
    }));
    if (r.count !== String(SPANS)) throw new Error(`header shows ${r.count} spans, expected ${SPANS}`);
    rendered.push(r.render);
    painted.push(r.paint);
    console.log(`run ${run + 1}: data→rendered ${r.render.toFixed(1)} ms, data→next frame ${r.paint.toFixed(1)} ms (${r.rows} rows in the DOM)`);
    await page.close();
  }
  const m = p50(rendered);
  console.log(`\n${SPANS} spans, ${RUNS} runs: p50 data→rendered ${m.toFixed(1)} ms, p50 data→next frame ${p50(painted).toFixed(1)} ms (target < ${TARGET_MS} ms): ${m < TARGET_MS ? 'PASS' : 'FAIL'}`);
  process.exitCode = m < TARGET_MS ? 0 : 1;
} finally {
  await browser.close();
  await ui.stop();
  await server.stop();
}
