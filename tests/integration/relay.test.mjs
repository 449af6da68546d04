// skiff serve as a Gemini relay (issue 2): the official SDK through skiff to skiff sim,
// auth, Google-format errors, limits, concurrency, streams, and secrets.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { GoogleGenAI } from '@google/genai';
import { startSim, startServe, sleep, fnv1a64 } from './lib.mjs';

const KEYS = ['AIzaSyTESTkeyNumberOne000000000000000001', 'AIzaSyTESTkeyNumberTwo000000000000000002'];
const TOKEN = 'sk-test-alice-0123456789';
let sim, serve;

before(async () => {
  sim = await startSim(['--rpm', '100000', '--rpd', '1000000', '--tpm', '1000000000']);
  serve = await startServe(`
tokens:
  - name: alice
    token: ${TOKEN}
upstreams:
  gemini:
    base_url: ${sim.url}
    keys:
      - ${KEYS[0]}
      - {key: ${KEYS[1]}, label: second}
limits: {max_body_bytes: 1048576, header_timeout_ms: 2500, idle_timeout_ms: 5000, max_connections: 1000}
workers: 2
`);
});

after(async () => {
  await serve?.stop();
  await sim?.stop();
  // No pool key and no client token may ever be written to skiff's logs.
  for (const secret of [...KEYS, TOKEN]) {
    assert.ok(!serve.stderr.includes(secret), 'a secret appeared in skiff serve logs');
    assert.ok(!serve.stdout.includes(secret), 'a secret appeared in skiff serve output');
  }
});

const url = (p) => `${serve.url}${p}`;
const post = (p, body, headers = {}) => fetch(url(p), {
  method: 'POST', headers: { 'content-type': 'application/json', 'x-goog-api-key': TOKEN, ...headers },
  body: typeof body === 'string' ? body : JSON.stringify(body),
});
const hello = { contents: [{ role: 'user', parts: [{ text: 'Say hello' }] }] };

function assertSkiffHeaders(r) {
  assert.match(r.headers.get('x-request-id') ?? '', /^[\w.-]+$/);
  assert.match(r.headers.get('x-skiff-attempts') ?? '', /^\d+$/);
  assert.ok(r.headers.get('x-skiff-model'));
  assert.ok(r.headers.get('x-skiff-key'));
  for (const k of KEYS) for (const [, v] of r.headers) assert.ok(!v.includes(k), 'a key leaked into a header');
}

async function assertGoogleError(r, code, status, re) {
  assert.equal(r.status, code);
  assert.match(r.headers.get('content-type'), /application\/json/);
  const body = await r.json();
  assert.equal(body.error.code, code);
  assert.equal(body.error.status, status);
  if (re) assert.match(body.error.message, re);
  assertSkiffHeaders(r);
  return body;
}

test('the official @google/genai SDK works through skiff by changing only its base URL', async () => {
  await sim.reset();
  const ai = new GoogleGenAI({ apiKey: TOKEN, httpOptions: { baseUrl: serve.url } });

  const res = await ai.models.generateContent({ model: 'gemini-2.5-flash', contents: 'Why is the sky blue?' });
  assert.ok(res.text.length > 0);
  assert.ok(res.usageMetadata.totalTokenCount > 0);

  let chunks = 0, text = '';
  for await (const c of await ai.models.generateContentStream({ model: 'gemini-2.5-flash', contents: 'Tell me a long story about boats' })) {
    chunks++;
    text += c.text ?? '';
  }
  assert.ok(chunks >= 2, `expected several stream chunks, got ${chunks}`);
  assert.ok(text.length > 0);

  const count = await ai.models.countTokens({ model: 'gemini-2.5-flash', contents: 'How many tokens is this?' });
  assert.ok(count.totalTokens > 0);

  const pager = await ai.models.list();
  const names = [];
  for await (const m of pager) names.push(m.name);
  assert.ok(names.includes('models/gemini-2.5-flash'), `models.list lacks gemini-2.5-flash: ${names}`);

  const emb = await ai.models.embedContent({ model: 'gemini-embedding-001', contents: 'embed me' });
  assert.ok(emb.embeddings[0].values.length > 0);

  // The upstream saw pool keys only, never the client's token.
  const log = await sim.log();
  assert.ok(log.length >= 5);
  for (const e of log) {
    assert.ok(KEYS.includes(e.key), `upstream saw a key that is not a pool key: ${e.key === TOKEN ? 'the client token' : 'other'}`);
  }
});

test('SSE streams keep Gemini\'s framing (data: line, CRLF CRLF, no [DONE]) through skiff', async () => {
  const r = await post('/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse', hello);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /text\/event-stream/);
  assertSkiffHeaders(r);
  const body = await r.text();
  const events = body.split('\r\n\r\n').filter(Boolean);
  assert.ok(events.length >= 1);
  for (const e of events) assert.match(e, /^data: \{/);
  assert.match(events.at(-1), /"finishReason": "STOP"/);
});

test('the client token is accepted as x-goog-api-key, ?key= and Bearer, and never sent upstream', async () => {
  await sim.reset();
  const a = await post('/v1beta/models/gemini-2.5-flash:generateContent', hello);
  const b = await fetch(url(`/v1beta/models/gemini-2.5-flash:generateContent?key=${TOKEN}`), { method: 'POST', body: JSON.stringify(hello) });
  const c = await fetch(url('/v1beta/models/gemini-2.5-flash:generateContent'), { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: JSON.stringify(hello) });
  for (const r of [a, b, c]) { assert.equal(r.status, 200); assertSkiffHeaders(r); await r.text(); }
  const log = await sim.log();
  assert.equal(log.length, 3);
  for (const e of log) {
    assert.ok(KEYS.includes(e.key));
    assert.ok(!JSON.stringify(e).includes(TOKEN), 'the client token reached the upstream');
    assert.equal(e.body_fnv, fnv1a64(JSON.stringify(hello)), 'the body did not go upstream byte for byte');
  }
});

test('a missing or wrong token gets 401 UNAUTHENTICATED and costs no upstream call', async () => {
  await sim.reset();
  await assertGoogleError(await post('/v1beta/models/gemini-2.5-flash:generateContent', hello, { 'x-goog-api-key': '' }), 401, 'UNAUTHENTICATED', /token/);
  await assertGoogleError(await post('/v1beta/models/gemini-2.5-flash:generateContent', hello, { 'x-goog-api-key': 'sk-wrong-token-xxxxxxxx' }), 401, 'UNAUTHENTICATED', /not one of skiff's tokens/);
  assert.equal((await sim.log()).length, 0);
});

test("skiff's own errors are in Google's format: unknown path, invalid JSON, wrong method", async () => {
  await assertGoogleError(await post('/v1beta/nothing/here', hello), 404, 'NOT_FOUND', /no route/);
  const bad = await assertGoogleError(await post('/v1beta/models/gemini-2.5-flash:generateContent', '{"contents": [}'), 400, 'INVALID_ARGUMENT', /Invalid JSON payload/);
  assert.match(bad.error.message, /byte \d+/);
  const r = await fetch(url('/v1beta/models/gemini-2.5-flash:generateContent'), { headers: { 'x-goog-api-key': TOKEN } });
  assert.equal(r.status, 405);
  await r.text();
});

test('upstream errors pass through with their status and body', async () => {
  const r = await post('/v1beta/models/gemini-nonexistent-model:generateContent', hello);
  assert.equal(r.status, 404);
  const body = await r.json();
  assert.equal(body.error.status, 'NOT_FOUND');
  assert.match(body.error.message, /models\/gemini-nonexistent-model is not found/);
  assertSkiffHeaders(r);
});

test('a body over the limit gets 413 naming the limit, and the next request still works', async () => {
  const big = JSON.stringify({ contents: [{ parts: [{ text: 'x'.repeat(2 * 1024 * 1024) }] }] });
  const r = await post('/v1beta/models/gemini-2.5-flash:generateContent', big);
  await assertGoogleError(r, 413, 'INVALID_ARGUMENT', /larger than limits\.max_body_bytes \(1048576 bytes\)/);
  const ok = await post('/v1beta/models/gemini-2.5-flash:generateContent', hello);
  assert.equal(ok.status, 200);
  await ok.text();
});

test('200 concurrent requests through one skiff all succeed', async () => {
  const rs = await Promise.all(Array.from({ length: 200 }, (_, i) =>
    post('/v1beta/models/gemini-2.5-flash:generateContent', { contents: [{ parts: [{ text: `question ${i}` }] }] })
      .then(async (r) => ({ status: r.status, body: await r.json() }))));
  const bad = rs.filter((r) => r.status !== 200);
  assert.equal(bad.length, 0, `failures: ${JSON.stringify(bad.slice(0, 3))}`);
  for (const r of rs) assert.ok(r.body.candidates[0].content.parts[0].text.length > 0);
});

test('malformed HTTP and slow clients get an error and cost nothing else', async () => {
  const raw = (data, waitMs = 3000) => new Promise((resolve) => {
    const u = new URL(serve.url);
    const s = net.connect(Number(u.port), u.hostname, () => { if (data) s.write(data); });
    let got = '';
    s.on('data', (d) => { got += d; });
    s.on('close', () => resolve(got));
    s.on('error', () => resolve(got));
    setTimeout(() => { s.destroy(); resolve(got); }, waitMs);
  });
  const garbage = await raw('BLAH / NOT-HTTP\r\n\r\n');
  assert.match(garbage, /^HTTP\/1\.1 400 /);
  assert.match(garbage, /"status": "INVALID_ARGUMENT"/);
  const smuggle = await raw('POST /v1beta/models HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
  assert.match(smuggle, /^HTTP\/1\.1 400 /);
  // A client that never finishes its headers is cut off after limits.header_timeout_ms.
  const slow = await raw('GET /healthz HTTP/1.1\r\nHost: x\r\n', 6000);
  assert.match(slow, /^HTTP\/1\.1 408 /);
  const ok = await fetch(url('/healthz'));
  assert.equal(ok.status, 200);
  assertSkiffHeaders(ok);
});

test('keep-alive and pipelined requests are answered in order', async () => {
  const u = new URL(serve.url);
  const got = await new Promise((resolve) => {
    const s = net.connect(Number(u.port), u.hostname, () => {
      s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    });
    let data = '';
    s.on('data', (d) => { data += d; });
    s.on('close', () => resolve(data));
  });
  const statuses = [...got.matchAll(/^HTTP\/1\.1 (\d+)/gm)].map((m) => m[1]);
  assert.deepEqual(statuses, ['200', '404', '200']);
});
