// Soak (issue 4): a flaky, rate-limited upstream under steady concurrent load, with clients
// that sometimes hang up mid-stream. Every request must end in a 200 or a correct Google
// error, skiff must exit cleanly (ASan/LSan), and no upstream call may be left open.
// SKIFF_SOAK_S sets the duration (default 20 s; the 2 minutes: SKIFF_SOAK_S=120).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startSim, startServe, sleep } from './lib.mjs';

const SECONDS = Number(process.env.SKIFF_SOAK_S || 20);
const KEYS = Array.from({ length: 4 }, (_, i) => `AIzaSoakKey${i}000000000000000000000000`);

test(`soak: ${SECONDS} s at 30% 503 and per-minute quotas, with client aborts`, { timeout: (SECONDS + 60) * 1000 }, async () => {
  const sim = await startSim(['--faults', '503=0.3,500=0.03', '--rpm', 'gemini-2.5-flash:300', '--tpm', 'unlimited', '--rpd', 'unlimited', '--seed', '7', '--chunk-ms', '5']);
  const serve = await startServe(`
upstreams: {gemini: {base_url: ${sim.url}, keys: [${KEYS.join(', ')}]}}
retry: {max_attempts: 6, base_delay_ms: 20, max_delay_ms: 200, deadline_ms: 5000, max_wait_ms: 300}
storage: {sqlite: ""}
workers: 2
`, { env: { SKIFF_LOG_LEVEL: 'warn' } });
  const counts = {};
  const bad = [];
  const t0 = Date.now();
  const end = t0 + SECONDS * 1000;
  let n = 0;
  let retries = 0; // upstream calls beyond each request's first (x-skiff-attempts - 1)
  let failedEarly = 0; // 5xx answers given up on before retry.max_attempts
  async function client(id) {
    while (Date.now() < end) {
      await sleep(40); // about 150 requests/s in all: a steady load, not a flood
      const i = n++;
      const stream = i % 3 === 0;
      const url = `${serve.url}/v1beta/models/gemini-2.5-flash:${stream ? 'streamGenerateContent?alt=sse' : 'generateContent'}`;
      const ac = new AbortController();
      try {
        const r = await fetch(url, { method: 'POST', signal: ac.signal, body: JSON.stringify({ contents: [{ parts: [{ text: `soak ${id} ${i} tell me a story` }] }] }) });
        const key = String(r.status);
        counts[key] = (counts[key] ?? 0) + 1;
        const attempts = Number(r.headers.get('x-skiff-attempts'));
        if (attempts > 1) retries += attempts - 1;
        if (r.status >= 500 && attempts < 6) failedEarly++;
        if (stream && r.status === 200 && i % 10 === 0) {
          await r.body.getReader().read(); // one event, then hang up
          ac.abort();
          continue;
        }
        const text = await r.text();
        if (r.status === 200) {
          if (!stream) assert.ok(JSON.parse(text).candidates);
          continue;
        }
        const body = JSON.parse(text);
        if (body.error?.code !== r.status || !body.error?.status || !body.error?.message || ![429, 500, 502, 503, 504].includes(r.status)) bad.push({ status: r.status, text: text.slice(0, 300) });
      } catch (e) {
        if (e.name !== 'AbortError') bad.push({ error: String(e) });
      }
    }
  }
  await Promise.all(Array.from({ length: 8 }, (_, i) => client(i)));
  // The calls clients hung up on are cancelled upstream at once: poll for it, with a deadline.
  const isOpen = (e) => !e.ended && !e.aborted && !e.reset && e.fault !== 'hang';
  let log = await sim.log();
  for (const t = Date.now(); log.some(isOpen) && Date.now() - t < 3000; log = await sim.log()) await sleep(50);
  await serve.stop();
  await sim.stop();
  assert.deepEqual(bad, [], 'some requests ended in neither a 200 nor a correct error');
  // Against what the retry budget allows (src/relay/budget.c): 0.2 retries per request plus
  // 5 a second, on top of the 50 it starts with. More is a retry storm. Fewer than half of
  // what the failures called for (bounded by that budget) means the engine stopped retrying
  // what it should: each failed upstream call is a retry unless the budget is spent (the
  // budget's cap and the client's answers on the last attempt account for the rest).
  const elapsed = (Date.now() - t0) / 1000 + 1;
  const allowed = 0.2 * n + 5 * elapsed + 50;
  const failedCalls = log.filter((e) => e.status >= 500 || e.status === 429).length;
  const wanted = Math.min(allowed, failedCalls);
  console.log(`soak: ${retries} retries for ${failedCalls} failed upstream calls; the budget allows ${Math.round(allowed)}; ${failedEarly} 5xx answered before retry.max_attempts`);
  assert.ok(retries <= allowed, `${retries} retries where the budget allows ${Math.round(allowed)}`);
  assert.ok(retries >= 0.5 * wanted, `only ${retries} retries for ${failedCalls} failed calls with a budget of ${Math.round(allowed)}`);
  const open = log.filter(isOpen);
  assert.deepEqual(open.map((e) => e.seq), [], 'upstream calls were left open');
  const upstream429 = log.filter((e) => e.status === 429).length;
  const upstream503 = log.filter((e) => e.status === 503).length;
  assert.ok(upstream503 > 0 && upstream429 > 0, `the soak did not exercise both faults: 503=${upstream503} 429=${upstream429}`);
  console.log(`soak: ${n} requests in ${SECONDS}s: ${JSON.stringify(counts)}; upstream saw ${log.length} calls (${upstream503} 503, ${upstream429} 429)`);
});
