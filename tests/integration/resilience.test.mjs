// Resilience (issue 4): each rule of the retry engine and the key pool, one scenario each,
// with skiff sim's scripted mode making the upstream's behaviour exact.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startSim, startServe, sleep, run, waitFor, logged } from './lib.mjs';

const K = ['AIzaResilienceKeyOne0000000000000000001', 'AIzaResilienceKeyTwo0000000000000000002', 'AIzaResilienceKeyThree00000000000000003'];
let sim;

before(async () => { sim = await startSim(['--rpm', 'unlimited', '--tpm', 'unlimited', '--rpd', 'unlimited']); });
after(async () => { await sim?.stop(); });
beforeEach(async () => { await sim.reset(); });

function config({ keys = K, attempts = 8, extra = '', sqlite = '""' } = {}) {
  return `
upstreams:
  gemini:
    base_url: ${sim.url}
    keys: [${keys.join(', ')}]
retry: {max_attempts: ${attempts}, base_delay_ms: 10, max_delay_ms: 40, deadline_ms: 8000, max_wait_ms: 1000}
fallbacks: {gemini-2.5-pro: [gemini-2.5-flash]}
storage: {sqlite: ${sqlite}}
workers: 1
${extra}`;
}

// Starts a skiff for one scenario; stops it (checking a clean exit) and checks its logs
// never held a key.
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
function gen(serve, model = 'gemini-2.5-flash', { headers = {}, stream = false, body = hello } = {}) {
  const method = stream ? 'streamGenerateContent?alt=sse' : 'generateContent';
  return fetch(`${serve.url}/v1beta/models/${model}:${method}`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body),
  });
}

test('503 five times, then success: one 200 with x-skiff-attempts: 6', async () => {
  await withServe({}, async (serve) => {
    await sim.script({ match: { model: 'gemini-2.5-flash' }, reply: { status: 503 }, times: 5 });
    const r = await gen(serve);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-skiff-attempts'), '6');
    assert.ok((await r.json()).candidates[0].content.parts[0].text.length > 0);
    const log = await sim.log();
    assert.deepEqual(log.map((e) => e.status), [503, 503, 503, 503, 503, 200]);
  });
});

test('a client error (400) is answered at once, not retried, and blames no key', async () => {
  await withServe({}, async (serve) => {
    await sim.script({ match: { model: 'gemini-2.5-flash' }, reply: { status: 400, message: 'Request contains an invalid argument.' }, times: 1 });
    const r = await gen(serve);
    assert.equal(r.status, 400);
    assert.equal(r.headers.get('x-skiff-attempts'), '1');
    assert.equal((await r.json()).error.message, 'Request contains an invalid argument.');
    const used = (await sim.log())[0].key;
    // The key was not blamed: it serves the next requests too.
    const keys = [];
    for (let i = 0; i < 3; i++) { const x = await gen(serve); assert.equal(x.status, 200); await x.text(); }
    for (const e of (await sim.log()).slice(1)) keys.push(e.key);
    assert.ok(keys.includes(used));
  });
});

test('a per-minute 429 rests that key for its delay while the other keys serve', async () => {
  await withServe({}, async (serve) => {
    await sim.script({ match: { key: K[0] }, reply: { quota: 'minute', retryDelay: 30 }, times: 1 });
    let hit = null;
    for (let i = 0; i < 9; i++) {
      const r = await gen(serve);
      assert.equal(r.status, 200);
      if (r.headers.get('x-skiff-attempts') === '2') hit = i;
      await r.text();
    }
    assert.notEqual(hit, null, 'no request met the 429');
    const log = await sim.log();
    const i429 = log.findIndex((e) => e.status === 429);
    assert.equal(log[i429].key, K[0]);
    const after = log.slice(i429 + 1);
    assert.ok(after.length >= 8);
    assert.ok(after.every((e) => e.key !== K[0]), 'the resting key was used again within its delay');
    assert.ok(after.some((e) => e.key === K[1]) && after.some((e) => e.key === K[2]));
  });
});

test('a per-day 429 (even with retryDelay 0s) rests the key for the day, also after a restart', async () => {
  const dir = (await import('node:fs')).mkdtempSync(join((await import('node:os')).tmpdir(), 'skiff-day-'));
  const sqlite = join(dir, 'skiff.db');
  await withServe({ sqlite }, async (serve) => {
    await sim.script({ match: { key: K[1] }, reply: { quota: 'day', retryDelay: 0 }, times: 1 });
    for (let i = 0; i < 6; i++) { const r = await gen(serve); assert.equal(r.status, 200); await r.text(); }
    const log = await sim.log();
    const i429 = log.findIndex((e) => e.status === 429);
    assert.equal(log[i429].key, K[1]);
    assert.ok(log.slice(i429 + 1).every((e) => e.key !== K[1]));
    // Another model is another quota: the key still serves it.
    const other = await gen(serve, 'gemini-2.5-flash-lite');
    assert.equal(other.status, 200);
    await other.text();
  });
  await sim.reset();
  await withServe({ sqlite }, async (serve) => {
    for (let i = 0; i < 6; i++) { const r = await gen(serve); assert.equal(r.status, 200); await r.text(); }
    const keys = (await sim.log()).map((e) => e.key);
    assert.ok(!keys.includes(K[1]), 'after a restart skiff used a key spent for today');
    assert.ok(keys.includes(K[0]) && keys.includes(K[2]));
  });
});

test('an invalid key is retired after one use and its error never reaches the client', async () => {
  const bad = 'NotAGeminiKey-bad-0000000000000001';
  await withServe({ keys: [bad, K[0]] }, async (serve) => {
    let retried = 0;
    for (let i = 0; i < 6; i++) {
      const r = await gen(serve);
      assert.equal(r.status, 200);
      if (r.headers.get('x-skiff-attempts') === '2') retried++;
      const text = await r.text();
      assert.ok(!text.includes(bad));
    }
    assert.equal(retried, 1);
    const log = await sim.log();
    // One generation call with it, and the probe that confirmed the verdict before retiring it.
    assert.equal(log.filter((e) => e.key === bad && e.method !== 'models.get').length, 1, 'the invalid key was used more than once');
    assert.equal(log.filter((e) => e.key === bad && e.method === 'models.get').length, 1, 'no probe confirmed the retirement');
    await logged(serve, /"state":"retired"/);
  });
});

test('Pro overloaded: Flash answers, and the response says so; x-skiff-fallback: off opts out', async () => {
  await withServe({}, async (serve) => {
    await sim.script({ match: { model: 'gemini-2.5-pro' }, reply: { status: 503 }, times: 0 });
    const r = await gen(serve, 'gemini-2.5-pro');
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-skiff-model'), 'gemini-2.5-flash');
    assert.equal((await r.json()).modelVersion, 'gemini-2.5-flash');
    const log = await sim.log();
    assert.ok(log.filter((e) => e.model === 'gemini-2.5-pro').length >= 1);
    assert.equal(log.at(-1).model, 'gemini-2.5-flash');

    const off = await gen(serve, 'gemini-2.5-pro', { headers: { 'x-skiff-fallback': 'off' } });
    assert.equal(off.status, 503);
    assert.equal(off.headers.get('x-skiff-model'), 'gemini-2.5-pro');
    assert.equal((await off.json()).error.status, 'UNAVAILABLE');
  });
});

test('a hung upstream: 504 DEADLINE_EXCEEDED within the deadline, and the upstream call is cancelled', async () => {
  await withServe({}, async (serve) => {
    await sim.script({ match: { model: 'gemini-2.5-flash' }, reply: { hang: true }, times: 0 });
    const t0 = Date.now();
    const r = await gen(serve, 'gemini-2.5-flash', { headers: { 'x-skiff-deadline-ms': '1500' } });
    const dt = Date.now() - t0;
    assert.equal(r.status, 504);
    const body = await r.json();
    assert.equal(body.error.status, 'DEADLINE_EXCEEDED');
    assert.match(body.error.message, /deadline/);
    assert.ok(dt >= 1400 && dt < 3000, `took ${dt} ms`);
    await waitFor('the hung upstream call to be cancelled', async () => {
      const log = await sim.log();
      return log.length >= 1 && log.every((e) => e.aborted);
    }, 1000);
  });
});

test('the client going away mid-stream cancels the upstream call within a second', async () => {
  await withServe({}, async (serve) => {
    const ev = (t) => ({ candidates: [{ content: { parts: [{ text: t }], role: 'model' }, index: 0 }], modelVersion: 'gemini-2.5-flash', responseId: 'abc' });
    await sim.script({ match: { method: 'streamGenerateContent' }, reply: { stream: Array.from({ length: 30 }, (_, i) => ev(`part ${i} `)), chunkMs: 200 } });
    const r = await gen(serve, 'gemini-2.5-flash', { stream: true, headers: {} });
    const reader = r.body.getReader();
    const first = await reader.read();
    assert.match(Buffer.from(first.value).toString(), /^data: /);
    await reader.cancel();
    const t0 = Date.now();
    let aborted = false;
    while (Date.now() - t0 < 1000 && !aborted) {
      await sleep(50);
      aborted = (await sim.log()).some((e) => e.stream && e.aborted);
    }
    assert.ok(aborted, 'the sim did not see the upstream stream cancelled within a second');
  });
});

test('every key spent: an immediate 429 with a RetryInfo for when the first key comes back', async () => {
  await withServe({}, async (serve) => {
    await sim.script({ match: { model: 'gemini-2.5-flash' }, reply: { quota: 'minute', retryDelay: 30 }, times: 3 });
    const t0 = Date.now();
    const r = await gen(serve, 'gemini-2.5-flash', { headers: { 'x-skiff-fallback': 'off' } });
    const dt = Date.now() - t0;
    assert.equal(r.status, 429);
    const body = await r.json();
    assert.equal(body.error.status, 'RESOURCE_EXHAUSTED');
    const ri = body.error.details.find((d) => d['@type'] === 'type.googleapis.com/google.rpc.RetryInfo');
    const secs = parseFloat(ri.retryDelay);
    assert.ok(secs >= 28 && secs <= 31, `retryDelay ${ri.retryDelay}`);
    assert.ok(dt < 1000, `took ${dt} ms: skiff burnt time instead of answering at once`);
    assert.equal((await sim.log()).length, 3);
    // And the next request does not touch the upstream at all.
    const again = await gen(serve, 'gemini-2.5-flash', { headers: { 'x-skiff-fallback': 'off' } });
    assert.equal(again.status, 429);
    await again.text();
    assert.equal((await sim.log()).length, 3);
  });
});

test('a stream whose first event is an error is retried before anything reaches the client', async () => {
  await withServe({}, async (serve) => {
    await sim.script({ match: { method: 'streamGenerateContent' }, reply: { stream: [], error: { code: 503, message: 'The model is overloaded. Please try again later.', status: 'UNAVAILABLE' } }, times: 1 });
    const r = await gen(serve, 'gemini-2.5-flash', { stream: true });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-skiff-attempts'), '2');
    const text = await r.text();
    assert.ok(!text.includes('"error"'));
    assert.match(text, /"finishReason": "STOP"/);
  });
});

test('a held stream judged empty while the upstream is still sending is retried at once', async () => {
  // The relay stops reading the first call (an empty answer, more bytes still to come);
  // the transport must end that call and report it, or the request waits for the deadline.
  await withServe({}, async (serve) => {
    const empty = { candidates: [{ content: { parts: [{ text: '' }], role: 'model' }, finishReason: 'STOP', index: 0 }], modelVersion: 'gemini-2.5-flash', responseId: 'e' };
    const late = { candidates: [{ content: { parts: [{ text: 'QQ-stopped-call-QQ' }], role: 'model' }, index: 0 }], modelVersion: 'gemini-2.5-flash', responseId: 'e' };
    await sim.script({ match: { method: 'streamGenerateContent' }, reply: { stream: [empty, late], chunkMs: 3000 }, times: 1 });
    const t0 = Date.now();
    const r = await gen(serve, 'gemini-2.5-flash', { stream: true });
    const text = await r.text();
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-skiff-attempts'), '2');
    assert.match(text, /"finishReason": "STOP"/);
    assert.ok(!text.includes('QQ-stopped-call-QQ'), 'the stopped first answer leaked into the second');
    assert.ok(Date.now() - t0 < 2500, `took ${Date.now() - t0} ms: the first call was not ended when the relay stopped it`);
  });
});

test('a stream that breaks after it started ends as a failure, never as a clean end', async () => {
  await withServe({}, async (serve) => {
    const ev = (t) => ({ candidates: [{ content: { parts: [{ text: t }], role: 'model' }, index: 0 }], modelVersion: 'gemini-2.5-flash', responseId: 'abc' });
    await sim.script({ match: { method: 'streamGenerateContent' }, reply: { stream: [ev('one '), ev('two '), ev('three ')], resetAfter: 2, chunkMs: 150 }, times: 1 });
    const r = await gen(serve, 'gemini-2.5-flash', { stream: true });
    assert.equal(r.status, 200);
    let text = '';
    const reader = r.body.getReader();
    await assert.rejects(async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += Buffer.from(value).toString();
      }
    }, 'the broken stream ended cleanly');
    assert.match(text, /one /);
    assert.match(text, /two /);
    assert.match(text, /"error": \{/);
    assert.equal(r.headers.get('x-skiff-attempts'), '1');
    assert.equal((await sim.log()).length, 1, 'a started stream was retried');
  });
});

test('garbage from the upstream (HTML 502) is retried, then reported as a Google error', async () => {
  await withServe({ attempts: 3 }, async (serve) => {
    await sim.script({ match: {}, reply: { status: 502, body: '<html><body>Bad Gateway</body></html>', contentType: 'text/html' }, times: 0 });
    const r = await gen(serve);
    assert.equal(r.status, 502);
    assert.equal(r.headers.get('x-skiff-attempts'), '3');
    assert.match(r.headers.get('content-type'), /application\/json/);
    const body = await r.json();
    assert.equal(body.error.code, 502);
    assert.match(body.error.message, /not a Google error/);
  });
});

test('an upstream that refuses connections: retried, then 502 naming the cause', async () => {
  const serve = await startServe(`
upstreams: {gemini: {base_url: "http://127.0.0.1:9", keys: [${K[0]}]}}
retry: {max_attempts: 3, base_delay_ms: 10, max_delay_ms: 20, deadline_ms: 5000}
storage: {sqlite: ""}
`);
  try {
    const r = await gen(serve);
    assert.equal(r.status, 502);
    assert.equal(r.headers.get('x-skiff-attempts'), '3');
    const body = await r.json();
    assert.equal(body.error.status, 'UNAVAILABLE');
    assert.match(body.error.message, /connect/i);
    assert.ok(!body.error.message.includes(K[0]));
  } finally {
    await serve.stop();
  }
});

test('with every key retired, the client gets the upstream reason and /healthz turns 503', async () => {
  const bad = 'NotAGeminiKey-bad-0000000000000002';
  await withServe({ keys: [bad] }, async (serve) => {
    const h0 = await fetch(`${serve.url}/healthz`);
    assert.equal(h0.status, 200);
    assert.equal((await h0.json()).usable_keys, 1);
    const r = await gen(serve);
    assert.equal(r.status, 400);
    const body = await r.json();
    assert.equal(body.error.details[0].reason, 'API_KEY_INVALID');
    const again = await gen(serve);
    assert.equal(again.status, 503);
    assert.match((await again.json()).error.message, /every key is retired/);
    assert.deepEqual((await sim.log()).map((e) => e.method), ['generateContent', 'models.get'], 'a retired key was used again');
    const h1 = await fetch(`${serve.url}/healthz`);
    assert.equal(h1.status, 503);
    assert.equal((await h1.json()).usable_keys, 0);
  });
});

test('an operator lists retired keys and brings one back with skiff keys', async () => {
  const fs = await import('node:fs');
  const dir = fs.mkdtempSync(join((await import('node:os')).tmpdir(), 'skiff-keys-'));
  const sqlite = join(dir, 'skiff.db');
  const bad = 'NotAGeminiKey-bad-0000000000000003';
  const first = await withServe({ keys: [bad, K[0]], sqlite }, async (serve) => {
    for (let i = 0; i < 3; i++) { const r = await gen(serve); assert.equal(r.status, 200); await r.text(); }
  });
  const cfg = join(first.dir, 'skiff.yaml');
  const list = await run(['keys', '--config', cfg]);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /key#1\s+\*\s+retired\s+-\s+invalid API key/);
  assert.ok(!list.stdout.includes(bad));
  const unknown = await run(['keys', '--config', cfg, 'enable', 'key#9']);
  assert.equal(unknown.code, 1);
  const en = await run(['keys', '--config', cfg, 'enable', 'key#1']);
  assert.equal(en.code, 0, en.stderr);
  assert.match(en.stdout, /key#1: enabled/);
  const after = await run(['keys', '--config', cfg]);
  assert.match(after.stdout, /every configured key is healthy/);
  await sim.reset();
  await withServe({ keys: [bad, K[0]], sqlite }, async (serve) => {
    for (let i = 0; i < 3; i++) { const r = await gen(serve); assert.equal(r.status, 200); await r.text(); }
    assert.equal((await sim.log()).filter((e) => e.key === bad && e.method !== 'models.get').length, 1, 'the enabled key was not tried again');
  });
});

test('an upstream that echoes the pool key: redacted in error bodies, garbage samples and mid-stream errors', async () => {
  await withServe({ attempts: 2 }, async (serve) => {
    const echo = `Invalid API key: ${K.join(' ')}`;
    await sim.script({ match: { method: 'generateContent' }, reply: { status: 400, message: echo, errorStatus: 'INVALID_ARGUMENT' }, times: 1 });
    const a = await gen(serve);
    const at = await a.text();
    assert.equal(a.status, 400);
    assert.match(at, /Invalid API key: \*{10}/);

    await sim.script({ match: { method: 'generateContent' }, reply: { status: 502, body: `<html>${echo}</html>`, contentType: 'text/html' }, times: 0 });
    const b = await gen(serve, 'gemini-2.5-flash-lite');
    const bt = await b.text();
    assert.equal(b.status, 502);
    assert.match(bt, /not a Google error/);
    await sim.reset();

    const ev = { candidates: [{ content: { parts: [{ text: 'one ' }], role: 'model' }, index: 0 }], modelVersion: 'gemini-2.5-flash', responseId: 'r' };
    await sim.script({ match: { method: 'streamGenerateContent' }, reply: { stream: [ev], chunkMs: 50, error: { code: 500, message: echo, status: 'INTERNAL' } }, times: 1 });
    const c = await gen(serve, 'gemini-2.5-flash', { stream: true });
    const ct = await c.text();
    assert.match(ct, /"error"/);
    for (const k of K) for (const t of [at, bt, ct]) assert.ok(!t.includes(k), 'a pool key reached the client');
  });
});
