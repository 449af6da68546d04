// Key health against hostile or careless clients (issue 10, items 1 and 2): what a client
// chooses (model names, resources of another project) never rests or retires a pool key,
// and a key is retired only when a probe with it confirms the upstream's verdict.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startSim, startServe } from './lib.mjs';

const K = ['AIzaKeyHealthOne000000000000000000000001', 'AIzaKeyHealthTwo000000000000000000000002'];
let sim;

before(async () => { sim = await startSim(['--rpm', 'unlimited', '--tpm', 'unlimited', '--rpd', 'unlimited']); });
after(async () => { await sim?.stop(); });
beforeEach(async () => { await sim.reset(); });

function config({ keys = K, extra = '' } = {}) {
  return `
upstreams:
  gemini:
    base_url: ${sim.url}
    keys: [${keys.join(', ')}]
retry: {max_attempts: 6, base_delay_ms: 10, max_delay_ms: 40, deadline_ms: 8000, max_wait_ms: 1}
storage: {sqlite: ""}
workers: 1
${extra}`;
}

async function withServe(opts, fn) {
  const serve = await startServe(config(opts));
  try {
    await fn(serve);
  } finally {
    await serve.stop();
    for (const k of opts?.keys ?? K) assert.ok(!serve.stderr.includes(k), 'a key appeared in the logs');
  }
  return serve;
}

const hello = { contents: [{ role: 'user', parts: [{ text: 'Say hello' }] }] };
function gen(serve, model = 'gemini-2.5-flash', { body = hello, stream = false, headers = {} } = {}) {
  const method = stream ? 'streamGenerateContent?alt=sse' : 'generateContent';
  return fetch(`${serve.url}/v1beta/models/${model}:${method}`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body),
  });
}

async function health(serve) {
  return (await fetch(`${serve.url}/healthz`)).json();
}

test('130 client-chosen model names later, a per-day 429 on Pro does not rest the key for Flash-Lite', async () => {
  await withServe({ keys: [K[0]] }, async (serve) => {
    for (let i = 0; i < 130; i++) {
      const r = await gen(serve, `junk-model-${i}`);
      assert.equal(r.status, 404);
      await r.text();
    }
    await sim.script({ match: { model: 'gemini-2.5-pro' }, reply: { quota: 'day' }, times: 1 });
    const noFallback = { headers: { 'x-skiff-fallback': 'off' } };
    const pro = await gen(serve, 'gemini-2.5-pro', noFallback);
    assert.equal(pro.status, 429);
    await pro.text();
    // The one key is spent for Pro today, and for nothing else.
    const again = await gen(serve, 'gemini-2.5-pro', noFallback);
    assert.equal(again.status, 429);
    assert.match((await again.json()).error.message, /resting for gemini-2.5-pro/);
    const lite = await gen(serve, 'gemini-2.5-flash-lite');
    assert.equal(lite.status, 200, 'the per-day rest of Pro was shared with Flash-Lite');
    await lite.text();
    const log = await sim.log();
    assert.equal(log.at(-1).model, 'gemini-2.5-flash-lite');
    assert.equal(log.at(-1).status, 200);
  });
});
