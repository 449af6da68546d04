// The engine's seam (issue 13): a test-only door (tests/door/chirp.c) that translates a
// trivial dialect through the engine gets its retries, fallbacks and hold-before-commit with
// no change to the engine. SKIFF_BIN is tests/door's binary: the real server with that door.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startSim, startServe, waitFor, logged } from '../integration/lib.mjs';

const K = ['AIzaDoorTestKeyOne00000000000000000001', 'AIzaDoorTestKeyTwo00000000000000000002'];
let sim;

before(async () => { sim = await startSim(['--rpm', 'unlimited', '--tpm', 'unlimited', '--rpd', 'unlimited']); });
after(async () => { await sim?.stop(); });
beforeEach(async () => { await sim.reset(); });

async function withServe(fn, extra = '') {
  const serve = await startServe(`
upstreams:
  gemini:
    base_url: ${sim.url}
    keys: [${K.join(', ')}]
tokens: [{name: t, token: chirp-token-0000000000000000}]
retry: {max_attempts: 6, base_delay_ms: 10, max_delay_ms: 40, deadline_ms: 8000, max_wait_ms: 1000}
fallbacks: {gemini-2.5-pro: [gemini-2.5-flash]}
storage: {sqlite: ""}
workers: 1
${extra}`);
  try {
    await fn(serve);
  } finally {
    await serve.stop();
    for (const k of K) assert.ok(!serve.stderr.includes(k), 'a key appeared in the logs');
  }
}

function say(serve, body, token = 'chirp-token-0000000000000000') {
  return fetch(`${serve.url}/chirp/v1/say`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
}

const ev = (t, finish) => ({ candidates: [{ content: { parts: [{ text: t }], role: 'model' }, ...(finish ? { finishReason: finish } : {}), index: 0 }], modelVersion: 'gemini-2.5-flash', responseId: 'c' });

test('chirp gets retries: 503, then 200, in chirp\'s own shape', async () => {
  await withServe(async (serve) => {
    await sim.script({ match: { model: 'gemini-2.5-flash', method: 'generateContent' }, reply: { status: 503 }, times: 1 });
    const r = await say(serve, { model: 'flash', say: 'Say hello' });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-skiff-attempts'), '2');
    assert.equal(r.headers.get('x-skiff-model'), 'gemini-2.5-flash');
    const body = await r.json();
    assert.equal(body.model, 'flash');
    assert.ok(body.heard.length > 0, 'no text heard');
    const log = await sim.log();
    assert.deepEqual(log.map((e) => [e.method, e.status]), [['generateContent', 503], ['generateContent', 200]]);
  });
});

test('chirp gets fallbacks: Pro overloaded, Flash answers', async () => {
  await withServe(async (serve) => {
    await sim.script({ match: { model: 'gemini-2.5-pro' }, reply: { status: 503 }, times: 20 });
    const r = await say(serve, { model: 'pro', say: 'Say hello' });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-skiff-model'), 'gemini-2.5-flash');
    assert.equal((await r.json()).model, 'pro');
    const log = await sim.log();
    assert.ok(log.some((e) => e.model === 'gemini-2.5-pro' && e.status === 503));
    assert.equal(log.at(-1).model, 'gemini-2.5-flash');
  });
});

test('chirp gets hold-before-commit: a stream that fails before its first content is retried invisibly', async () => {
  await withServe(async (serve) => {
    await sim.script({ match: { method: 'streamGenerateContent' }, reply: { stream: [], error: { code: 503, message: 'The model is overloaded. Please try again later.', status: 'UNAVAILABLE' } }, times: 1 });
    await sim.script({ match: { method: 'streamGenerateContent' }, reply: { stream: [ev('one '), ev('two', 'STOP')] }, times: 1 });
    const r = await say(serve, { model: 'flash', say: 'Count', stream: true });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-skiff-attempts'), '2');
    assert.equal(await r.text(), 'chirp 1: one \nchirp 2: two\nfin\n');
    const log = await sim.log();
    assert.equal(log.length, 2);
    assert.ok(log.every((e) => e.method === 'streamGenerateContent' && e.alt === 'sse'));
  });
});

test('chirp after the first byte: a broken stream ends with chirp\'s error line and an aborted body, never retried', async () => {
  await withServe(async (serve) => {
    await sim.script({ match: { method: 'streamGenerateContent' }, reply: { stream: [ev('one '), ev('two '), ev('three ')], resetAfter: 2, chunkMs: 100 }, times: 1 });
    const r = await say(serve, { model: 'flash', say: 'Count', stream: true });
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
    assert.match(text, /^chirp 1: one \nchirp 2: two \noops: the upstream stream broke/);
    assert.ok(!text.includes('fin'));
    assert.equal((await sim.log()).length, 1, 'a started stream was retried');
  });
});

test('chirp\'s errors are chirp\'s; the Gemini door beside it is unchanged', async () => {
  await withServe(async (serve) => {
    const bad = await say(serve, { model: 'flash', say: 'x' }, 'not-the-token');
    assert.equal(bad.status, 401);
    assert.deepEqual(await bad.json(), { oops: { status: 401, message: 'send the skiff token as Authorization: Bearer' } });
    await sim.script({ match: { model: 'gemini-2.5-flash' }, reply: { status: 400, message: 'Bad thing.' }, times: 1 });
    const up = await say(serve, { model: 'flash', say: 'x' });
    assert.equal(up.status, 400);
    assert.deepEqual(await up.json(), { oops: { status: 400, message: 'Bad thing.' } });
    const g = await fetch(`${serve.url}/v1beta/models/gemini-2.5-flash:generateContent`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-goog-api-key': 'chirp-token-0000000000000000' },
      body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'Say hello' }] }] }),
    });
    assert.equal(g.status, 200);
    assert.ok((await g.json()).candidates[0].content.parts[0].text.length > 0);
  });
});

test('chirp gets the quality filters: the repetition guard ends a stuck stream cleanly and cancels the upstream', async () => {
  await withServe(async (serve) => {
    const stuck = [ev('Here is the answer. '), ...Array.from({ length: 60 }, () => ev('I will repeat this sentence forever. '))];
    await sim.script({ match: { method: 'streamGenerateContent' }, reply: { stream: stuck, chunkMs: 10 }, times: 1 });
    const r = await say(serve, { model: 'flash', say: 'Count', stream: true });
    assert.equal(r.status, 200);
    const lines = (await r.text()).split('\n').filter(Boolean);
    assert.ok(lines.length < stuck.length, `all ${lines.length} events were translated`);
    assert.equal(lines.at(-1), 'fin', 'the guard\'s stop is a clean end');
    assert.match(lines.at(-2), /^chirp \d+: $/, 'the guard\'s last event was translated like any other');
    await waitFor('the upstream call to be cancelled after the guard stopped it', async () => (await sim.log()).at(-1).aborted, 1000);
    await logged(serve, /"event":"repetition_stopped"/);
  }, 'quality: {repetition_guard: on}');
});
