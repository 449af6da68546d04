// CORS (config cors.origins) and the helpful 404s: skiff serve in front of skiff sim.
// Browsers send the preflight without a token, so it is answered before auth; every other
// request still needs its token, and every answer to a listed origin (errors included)
// carries Access-Control-Allow-Origin and the exposed headers. A path skiff does not serve
// gets a 404 that says what it is or names the nearest path skiff serves.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startSim, startServe, run } from './lib.mjs';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const KEY = 'AIzaSyCorsTestKeyNumber000000000000001';
const TOKEN = 'sk-cors-test-0123456789abcdef';
const APP = 'https://app.example';
const GEN = '/v1beta/models/gemini-2.5-flash:generateContent';
const HELLO = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'Hello' }] }] });

let sim, serve, plain;

before(async () => {
  sim = await startSim(['--rpm', '100000', '--rpd', '1000000', '--tpm', '1000000000']);
  const common = `
tokens:
  - name: alice
    token: ${TOKEN}
upstreams:
  gemini:
    base_url: ${sim.url}
    keys: [${KEY}]
`;
  serve = await startServe(`${common}cors:\n  origins: ["${APP}", "http://localhost:5173"]\n`);
  plain = await startServe(common);
});

after(async () => {
  await serve?.stop();
  await plain?.stop();
  await sim?.stop();
});

// node:http, so that Origin and the preflight headers go out exactly as written.
function request(base, method, path, headers = {}, body) {
  return new Promise((resolve, reject) => {
    const u = new URL(path, base);
    const r = http.request({ host: u.hostname, port: u.port, method, path: u.pathname + u.search, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text }));
    });
    r.on('error', reject);
    r.end(body);
  });
}

const preflight = (base, origin, method = 'POST', headers = 'content-type,x-goog-api-key,x-goog-api-client') =>
  request(base, 'OPTIONS', GEN, {
    origin, 'access-control-request-method': method, 'access-control-request-headers': headers,
  });

const list = (v) => (v || '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);

test('a preflight from a listed origin gets 204 with the methods, the SDK headers, max-age and Vary, without a token', async () => {
  const r = await preflight(serve.url, APP);
  assert.equal(r.status, 204, r.text);
  assert.equal(r.headers['access-control-allow-origin'], APP);
  assert.deepEqual(list(r.headers['access-control-allow-methods']), ['get', 'post', 'delete', 'patch']);
  const allowed = list(r.headers['access-control-allow-headers']);
  for (const h of ['x-goog-api-key', 'x-goog-api-client', 'content-type', 'authorization',
    'x-goog-upload-protocol', 'x-goog-upload-command', 'x-goog-upload-offset',
    'x-goog-upload-header-content-length', 'x-goog-upload-header-content-type',
    'x-skiff-deadline-ms', 'x-skiff-fallback', 'x-skiff-retry-timeouts', 'x-server-timeout'])
    assert.ok(allowed.includes(h), `${h} missing from ${allowed}`);
  assert.ok(Number(r.headers['access-control-max-age']) > 0);
  assert.ok(list(r.headers.vary).includes('origin'));
  assert.ok(!('access-control-allow-credentials' in r.headers), 'skiff never allows credentials');
  // The second listed origin works as well; a preflight for any path is answered, so that
  // the real request's 404 can be read by the page.
  const b = await request(serve.url, 'OPTIONS', '/v1beta/nothing', { origin: 'http://localhost:5173', 'access-control-request-method': 'GET' });
  assert.equal(b.status, 204);
  assert.equal(b.headers['access-control-allow-origin'], 'http://localhost:5173');
});

test('a preflight from an origin not listed is refused with 403 naming cors.origins, and no CORS header', async () => {
  for (const origin of ['https://evil.example', 'https://app.example.evil.example', 'http://app.example', 'https://APP.example']) {
    const r = await preflight(serve.url, origin);
    assert.equal(r.status, 403, origin);
    assert.match(JSON.parse(r.text).error.message, /cors\.origins/);
    for (const h of Object.keys(r.headers))
      assert.ok(!h.startsWith('access-control-'), `${origin}: ${h} on a refused preflight`);
  }
});

test('an actual POST from a listed origin carries Allow-Origin and the exposed headers; it still needs its token', async () => {
  const r = await request(serve.url, 'POST', GEN, { origin: APP, 'content-type': 'application/json', 'x-goog-api-key': TOKEN }, HELLO);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers['access-control-allow-origin'], APP);
  const exposed = list(r.headers['access-control-expose-headers']);
  for (const h of ['x-skiff-attempts', 'x-skiff-model', 'x-skiff-key', 'x-skiff-hint', 'x-skiff-finish',
    'x-request-id', 'x-goog-upload-url', 'x-goog-upload-status'])
    assert.ok(exposed.includes(h), `${h} not exposed: ${exposed}`);
  assert.ok(list(r.headers.vary).includes('origin'));
  assert.equal(r.headers['x-skiff-model'], 'gemini-2.5-flash');
  // Without the token: 401, and the page can read why.
  const n = await request(serve.url, 'POST', GEN, { origin: APP, 'content-type': 'application/json' }, HELLO);
  assert.equal(n.status, 401);
  assert.equal(n.headers['access-control-allow-origin'], APP);
  assert.ok(list(n.headers['access-control-expose-headers']).includes('x-skiff-model'));
});

test('error answers to a listed origin carry the CORS headers too; other origins get none', async () => {
  const bad = await request(serve.url, 'POST', GEN, { origin: APP, 'x-goog-api-key': TOKEN }, '{"contents": [');
  assert.equal(bad.status, 400);
  assert.equal(bad.headers['access-control-allow-origin'], APP);
  const missing = await request(serve.url, 'GET', '/v1beta/model/gemini-2.5-flash', { origin: APP, 'x-goog-api-key': TOKEN });
  assert.equal(missing.status, 404);
  assert.equal(missing.headers['access-control-allow-origin'], APP);
  const other = await request(serve.url, 'POST', GEN, { origin: 'https://evil.example', 'x-goog-api-key': TOKEN, 'content-type': 'application/json' }, HELLO);
  assert.equal(other.status, 200); // a token holder is served; the browser just cannot read it
  assert.ok(!('access-control-allow-origin' in other.headers));
  assert.ok(!('access-control-expose-headers' in other.headers));
});

test('with cors off, OPTIONS is 405 with Allow, and no CORS header appears', async () => {
  const r = await preflight(plain.url, APP);
  assert.equal(r.status, 405);
  assert.equal(r.headers.allow, 'POST');
  const g = await request(plain.url, 'POST', GEN, { origin: APP, 'x-goog-api-key': TOKEN, 'content-type': 'application/json' }, HELLO);
  assert.equal(g.status, 200);
  for (const x of [r, g])
    for (const h of Object.keys(x.headers))
      assert.ok(!h.startsWith('access-control-'), `${h} with cors off`);
  // A listed origin that is not a preflight: OPTIONS without Access-Control-Request-Method.
  const o = await request(serve.url, 'OPTIONS', GEN, { origin: APP });
  assert.equal(o.status, 405);
  assert.equal(o.headers['access-control-allow-origin'], APP);
});

// ---- the config rules -----------------------------------------------------------------------

function configFile(yaml, withTokens) {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-cors-'));
  const path = join(dir, 'skiff.yaml');
  writeFileSync(path, `listen: 127.0.0.1:0\ncatalog: {refresh_s: 0}\n${withTokens ? `tokens: [{name: alice, token: ${TOKEN}}]\n` : ''}upstreams: {gemini: {base_url: ${sim.url}, keys: [${KEY}]}}\n${yaml}`);
  return path;
}

test('open mode (no tokens): cors.origins may list only loopback origins; "*" or another origin is a config error', async () => {
  for (const o of ['https://app.example', '*', 'http://192.168.1.10:3000']) {
    const r = await run(['serve', '--config', configFile(`cors: {origins: ["${o}"]}\n`, false)]);
    assert.notEqual(r.code, 0, `${o} was accepted without tokens`);
    assert.match(r.stderr, /cors\.origins/);
    assert.match(r.stderr, /no tokens are configured/);
    assert.match(r.stderr, /SKIFF_TOKENS/);
  }
  const open = await startServe(`upstreams: {gemini: {base_url: ${sim.url}, keys: [${KEY}]}}\ncors: {origins: ["http://localhost:5173", "http://[::1]:8000"]}\n`);
  try {
    const p = await preflight(open.url, 'http://localhost:5173');
    assert.equal(p.status, 204, p.text);
    assert.equal(p.headers['access-control-allow-origin'], 'http://localhost:5173');
    const g = await request(open.url, 'POST', GEN, { origin: 'http://localhost:5173', 'content-type': 'application/json' }, HELLO);
    assert.equal(g.status, 200, g.text);
    assert.equal(g.headers['access-control-allow-origin'], 'http://localhost:5173');
    // Open mode's Host rule holds for a preflight too (DNS rebinding).
    const h = await request(open.url, 'OPTIONS', GEN, { host: 'rebind.example', origin: 'http://localhost:5173', 'access-control-request-method': 'POST' });
    assert.equal(h.status, 403);
    assert.match(JSON.parse(h.text).error.message, /open mode/);
    assert.ok(!('access-control-allow-origin' in h.headers));
  } finally {
    await open.stop();
  }
});

test('cors.origins entries must be origins as browsers send them', async () => {
  for (const [o, re] of [['https://app.example/', /no path/], ['app.example', /http:\/\/ or https:\/\//], ['https://App.example', /lower case/]]) {
    const r = await run(['serve', '--config', configFile(`cors: {origins: ["${o}"]}\n`, true)]);
    assert.notEqual(r.code, 0, o);
    assert.match(r.stderr, /cors\.origins/);
    assert.match(r.stderr, re);
  }
  const r = await run(['serve', '--config', configFile('cors: {orgins: ["https://app.example"]}\n', true)]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /origins/);
});

test('"*" (tokens required) answers any origin with Allow-Origin: * and never with credentials', async () => {
  const any = await startServe(`tokens: [{name: alice, token: ${TOKEN}}]\nupstreams: {gemini: {base_url: ${sim.url}, keys: [${KEY}]}}\ncors: {origins: ["*"]}\n`);
  try {
    const p = await preflight(any.url, 'https://whoever.example');
    assert.equal(p.status, 204);
    assert.equal(p.headers['access-control-allow-origin'], '*');
    assert.ok(!('access-control-allow-credentials' in p.headers));
    const n = await request(any.url, 'POST', GEN, { origin: 'https://whoever.example', 'content-type': 'application/json' }, HELLO);
    assert.equal(n.status, 401, 'a listed origin still needs its token');
    assert.equal(n.headers['access-control-allow-origin'], '*');
  } finally {
    await any.stop();
  }
});

// ---- helpful 404s ---------------------------------------------------------------------------

const get = (p, headers = {}) => request(serve.url, 'GET', p, headers);
const message = (r) => JSON.parse(r.text).error.message;

test('a mistyped path names the nearest path skiff serves', async () => {
  const cases = [
    ['POST', '/v1beta/model/gemini-2.5-flash:generateContent', '/v1beta/models/gemini-2.5-flash:generateContent'],
    ['POST', '/v1beta/models/gemini-2.5-flash:generateContents', '/v1beta/models/gemini-2.5-flash:generateContent'],
    ['POST', '/v1beta/models/gemini-2.5-flash:streamGenerate', '/v1beta/models/gemini-2.5-flash:streamGenerateContent'],
    ['POST', '/models/gemini-2.5-flash:countTokens', '/v1/models/gemini-2.5-flash:countTokens'], // the shortest edit,
    ['GET', '/v1beta/modles', '/v1beta/models'],
    ['GET', '/healthzz', '/healthz'],
  ];
  for (const [method, path, want] of cases) {
    const r = await request(serve.url, method, path, { 'x-goog-api-key': TOKEN, 'content-type': 'application/json' }, method === 'POST' ? HELLO : undefined);
    assert.equal(r.status, 404, path);
    assert.ok(message(r).includes(`did you mean ${want}?`), `${path}: ${message(r)}`);
  }
  // Nothing near: no guess, but what skiff serves.
  const far = await get('/wp-admin/install.php');
  assert.equal(far.status, 404);
  assert.doesNotMatch(message(far), /did you mean/);
  assert.match(message(far), /skiff serves \/v1beta\/models\/\{model\}:\{method\}/);
  assert.equal((await sim.log()).filter((e) => /model\/|modles|wp-admin|healthzz/.test(e.path || e.url || '')).length, 0, 'a 404 went upstream');
});

test('OpenAI paths go to the OpenAI door; with a Gemini credential, and Gemini families skiff does not relay yet, say so', async () => {
  const chat = await request(serve.url, 'POST', '/v1/chat/completions', { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, '{"model":"gpt-4o","messages":[]}');
  // The OpenAI door answers, in OpenAI's shape (gpt-4o is in no models: map here).
  assert.equal(chat.status, 404, chat.text);
  assert.equal(JSON.parse(chat.text).error.type, 'not_found_error');
  assert.equal(JSON.parse(chat.text).error.code, 'model_not_found');
  // An OpenAI path with a Gemini key header reaches the Gemini door, which says where to go.
  const mixed = await request(serve.url, 'POST', '/v1/chat/completions', { 'x-goog-api-key': TOKEN, 'content-type': 'application/json' }, '{"model":"gpt-4o","messages":[]}');
  assert.equal(mixed.status, 404);
  assert.match(message(mixed), /OpenAI path that reached skiff's Gemini door/);
  assert.match(message(mixed), /Authorization: Bearer and no Gemini credential/);
  assert.match(message(mixed), /\/v1beta\/models\/\{model\}:generateContent/);
  for (const [path, re] of [['/v1beta/tunedModels', /tunedModels are not relayed by skiff yet/],
    ['/v1beta/corpora/x', /corpora are not relayed/],
    ['/v1beta/openai/images/generations', /OpenAI-compatible endpoint's other calls .* not relayed/]]) {
    const r = await get(path, { 'x-goog-api-key': TOKEN });
    assert.equal(r.status, 404, path);
    assert.match(message(r), re, path);
  }
});

test('GET /v1/models: an OpenAI client (Bearer, no Gemini credential) gets OpenAI\'s list, the Gemini SDKs get Gemini\'s', async () => {
  const o = await get('/v1/models', { authorization: `Bearer ${TOKEN}` });
  assert.equal(o.status, 200, o.text);
  const list = JSON.parse(o.text);
  assert.equal(list.object, 'list');
  assert.equal(list.models, undefined, 'Gemini\'s model list went to an OpenAI client');
  assert.ok(list.data.some((m) => m.id === 'gemini-2.5-flash' && m.object === 'model'));
  const one = await get('/v1/models/gpt-4o', { authorization: `Bearer ${TOKEN}` });
  assert.equal(one.status, 404);
  assert.equal(JSON.parse(one.text).error.code, 'model_not_found');
  for (const headers of [{ 'x-goog-api-key': TOKEN }, { authorization: `Bearer ${TOKEN}`, 'x-goog-api-client': 'google-genai-sdk/1.0.0 gl-node/22' }]) {
    const g = await get('/v1/models', headers);
    assert.equal(g.status, 200, g.text);
    assert.ok(Array.isArray(JSON.parse(g.text).models));
  }
  const k = await get(`/v1/models?key=${TOKEN}`);
  assert.equal(k.status, 200, k.text);
  assert.ok(Array.isArray(JSON.parse(k.text).models));
  // /v1beta is Gemini's alone.
  const b = await get('/v1beta/models', { authorization: `Bearer ${TOKEN}` });
  assert.equal(b.status, 200);
});
