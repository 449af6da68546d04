// Google's OpenAI-compatible endpoint (/v1beta/openai/) and /v1alpha through skiff (issue
// 16): the official `openai` SDK pointed at <skiff>/v1beta/openai/ is answered by `skiff sim`
// on a pool key, sent as Authorization: Bearer; the client's token never goes upstream.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { GoogleGenAI } from '@google/genai';
import { startSim, startServe } from './lib.mjs';

const KEYS = ['AIzaSyTESTkeyCompat000000000000000000001', 'AIzaSyTESTkeyCompat000000000000000000002'];
const TOKEN = 'sk-test-compat-0123456789';
let sim, serve, client;

before(async () => {
  sim = await startSim(['--rpm', '100000', '--rpd', '1000000', '--tpm', '1000000000']);
  serve = await startServe(`
tokens: [{name: app, token: ${TOKEN}}]
upstreams: {gemini: {base_url: ${sim.url}, keys: [${KEYS.join(', ')}]}}
fallbacks: {gemini-2.5-pro: [gemini-2.5-flash]}
retry: {max_attempts: 3, base_delay_ms: 10, max_delay_ms: 50}
workers: 1
`);
  client = new OpenAI({ apiKey: TOKEN, baseURL: `${serve.url}/v1beta/openai/`, maxRetries: 0 });
});

after(async () => {
  await serve?.stop();
  await sim?.stop();
  for (const k of KEYS) assert.ok(!serve.stderr.includes(k), 'a pool key appeared in the logs');
});

test('compat chat completion: Google\'s answer as it came, on a pool key as Bearer, never the client\'s token', async () => {
  await sim.reset();
  const { data, response } = await client.chat.completions.create({
    model: 'gemini-2.5-flash',
    messages: [{ role: 'user', content: 'Say hello' }],
  }).withResponse();
  assert.equal(data.object, 'chat.completion');
  assert.equal(data.model, 'gemini-2.5-flash');
  assert.match(data.choices[0].message.content, /Simulated answer to "Say hello/);
  assert.equal(response.headers.get('x-skiff-model'), 'gemini-2.5-flash');
  assert.equal(response.headers.get('x-skiff-attempts'), '1');
  const log = await sim.log();
  assert.equal(log.length, 1);
  assert.equal(log[0].path, '/v1beta/openai/chat/completions');
  assert.equal(log[0].method, 'chat.completions');
  assert.ok(KEYS.includes(log[0].key), `the upstream got ${log[0].key}, not a pool key`);
});

test('compat stream: SSE chunks end with [DONE], relayed as they came', async () => {
  await sim.reset();
  const chunks = [];
  for await (const c of await client.chat.completions.create({ model: 'gemini-2.5-flash', stream: true, messages: [{ role: 'user', content: 'Tell me a long story about boats' }] }))
    chunks.push(c);
  assert.ok(chunks.length > 1, 'one chunk only');
  assert.equal(chunks[0].object, 'chat.completion.chunk');
  assert.match(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), /Simulated answer to "Tell me a long story/);
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
  const raw = await fetch(`${serve.url}/v1beta/openai/chat/completions`, {
    method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gemini-2.5-flash', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal(raw.status, 200);
  assert.match(raw.headers.get('content-type'), /^text\/event-stream/);
  assert.match(await raw.text(), /data: \[DONE\]\n\n$/);
  const log = await sim.log();
  assert.equal(log.length, 2);
  assert.ok(log.every((e) => e.stream && KEYS.includes(e.key)));
});

test('compat: a 503 is retried on another attempt; the client sees the 200', async () => {
  await sim.reset();
  await sim.script({ match: { model: 'gemini-2.5-flash', method: 'chat.completions' }, reply: { status: 503 }, times: 1 });
  const { data, response } = await client.chat.completions.create({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'again' }] }).withResponse();
  assert.equal(data.object, 'chat.completion');
  assert.equal(response.headers.get('x-skiff-attempts'), '2');
  const log = await sim.log();
  assert.deepEqual(log.map((e) => e.status), [503, 200]);
  assert.ok(log.every((e) => KEYS.includes(e.key)));
});

test('compat: Google\'s errors come back as they came (the array form), no fallback model', async () => {
  await sim.reset();
  await sim.script({ match: { model: 'gemini-2.5-pro', method: 'chat.completions' }, reply: { status: 400, message: 'Invalid JSON payload received. Unknown name "google": Cannot find field.' }, times: 1 });
  const r = await fetch(`${serve.url}/v1beta/openai/chat/completions`, {
    method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gemini-2.5-pro', google: {}, messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal(r.status, 400);
  const body = JSON.parse(await r.text());
  assert.ok(Array.isArray(body), 'the array form of Google\'s compat errors');
  assert.match(body[0].error.message, /Unknown name "google"/);
  const log = await sim.log();
  assert.equal(log.length, 1, 'a client\'s 400 is not retried nor sent to a fallback');
  assert.equal(log[0].path, '/v1beta/openai/chat/completions');
  // An overloaded model is retried on the same model only: no Gemini fallback for these.
  await sim.reset();
  await sim.script({ match: { model: 'gemini-2.5-pro', method: 'chat.completions' }, reply: { status: 503 }, times: 5 });
  const o = await fetch(`${serve.url}/v1beta/openai/chat/completions`, {
    method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gemini-2.5-pro', messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal(o.status, 503);
  const olog = await sim.log();
  assert.equal(olog.length, 3);
  assert.ok(olog.every((e) => e.path === '/v1beta/openai/chat/completions' && e.model === 'gemini-2.5-pro'));
});

test('compat models list and get, embeddings, and the client\'s token is checked by skiff', async () => {
  const list = await client.models.list();
  assert.ok(list.data.some((m) => m.id === 'models/gemini-2.5-flash'));
  const one = await client.models.retrieve('models/gemini-2.5-flash');
  assert.equal(one.id, 'models/gemini-2.5-flash');
  assert.equal(one.owned_by, 'google');
  const emb = await client.embeddings.create({ model: 'gemini-embedding-001', input: ['one', 'two'] });
  assert.equal(emb.data.length, 2);
  assert.equal(emb.data[1].index, 1);
  assert.ok(emb.data[0].embedding.length > 0);
  const log = await sim.log();
  assert.deepEqual(log.slice(-3).map((e) => e.path), ['/v1beta/openai/models', '/v1beta/openai/models/gemini-2.5-flash', '/v1beta/openai/embeddings']);
  assert.ok(log.slice(-3).every((e) => KEYS.includes(e.key)));
  const bad = await fetch(`${serve.url}/v1beta/openai/models`, { headers: { authorization: 'Bearer wrong' } });
  assert.equal(bad.status, 401);
  assert.match(await bad.text(), /not one of skiff's tokens/);
  const wrong = await fetch(`${serve.url}/v1beta/openai/chat/completions`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(wrong.status, 405);
  assert.equal(wrong.headers.get('allow'), 'POST');
});

test('v1alpha: generateContent through @google/genai with apiVersion v1alpha', async () => {
  await sim.reset();
  const ai = new GoogleGenAI({ apiKey: TOKEN, apiVersion: 'v1alpha', httpOptions: { baseUrl: serve.url } });
  const r = await ai.models.generateContent({ model: 'gemini-2.5-flash', contents: 'Say hello' });
  assert.match(r.text, /Simulated answer to "Say hello/);
  const log = await sim.log();
  assert.equal(log.at(-1).path, '/v1alpha/models/gemini-2.5-flash:generateContent');
  assert.ok(KEYS.includes(log.at(-1).key));
  const m = await ai.models.get({ model: 'gemini-2.5-flash' });
  assert.equal(m.name, 'models/gemini-2.5-flash');
  const n = (await sim.log()).length;
  const files = await fetch(`${serve.url}/v1alpha/files`, { headers: { 'x-goog-api-key': TOKEN } });
  assert.equal(files.status, 404);
  assert.match(JSON.parse(await files.text()).error.message, /on \/v1alpha skiff relays the model calls, models and auth_tokens only/);
  assert.equal((await sim.log()).length, n, 'a 404 went upstream');
});

test('v1alpha auth_tokens: an ephemeral token made on a pool key, the client\'s token never upstream', async () => {
  await sim.reset();
  const ai = new GoogleGenAI({ apiKey: TOKEN, apiVersion: 'v1alpha', httpOptions: { baseUrl: serve.url } });
  const t = await ai.authTokens.create({ config: { uses: 1 } });
  assert.match(t.name, /^auth_tokens\//);
  const log = await sim.log();
  assert.equal(log.length, 1);
  assert.equal(log[0].path, '/v1alpha/auth_tokens');
  assert.equal(log[0].http_method, 'POST');
  assert.ok(KEYS.includes(log[0].key), `the upstream got ${log[0].key}, not a pool key`);
  const get = await fetch(`${serve.url}/v1alpha/auth_tokens`, { headers: { 'x-goog-api-key': TOKEN } });
  assert.equal(get.status, 405);
  assert.equal(get.headers.get('allow'), 'POST');
});
