// Validation and diagnostics through the relay (issue 5): client mistakes answered locally
// without an upstream call, valid requests passed through untouched, upstream errors with
// the guide's advice, notable finishes flagged, and the catalog read from the upstream.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startSim, startServe, sleep, fnv1a64 } from './lib.mjs';

const KEY = 'AIzaValidationKey000000000000000000001';
let sim, serve;

before(async () => {
  sim = await startSim(['--rpm', 'unlimited', '--tpm', 'unlimited', '--rpd', 'unlimited']);
  serve = await startServe(`
upstreams: {gemini: {base_url: ${sim.url}, keys: [${KEY}]}}
retry: {max_attempts: 3, base_delay_ms: 5, max_delay_ms: 10, deadline_ms: 5000}
storage: {sqlite: ""}
workers: 1
`);
});
after(async () => { await serve?.stop(); await sim?.stop(); });
beforeEach(async () => { await sim.reset(); });

const post = (path, body) => fetch(`${serve.url}${path}`, {
  method: 'POST', headers: { 'content-type': 'application/json' },
  body: typeof body === 'string' ? body : JSON.stringify(body),
});
const hello = { contents: [{ role: 'user', parts: [{ text: 'hi' }] }] };

async function refused(r, code, field, re) {
  assert.equal(r.status, code);
  const body = await r.json();
  assert.match(body.error.message, re);
  const br = body.error.details.find((d) => d['@type'].endsWith('google.rpc.BadRequest'));
  if (field) assert.equal(br.fieldViolations[0].field, field);
  assert.ok(body.error.details.find((d) => d['@type'].endsWith('google.rpc.Help')).links[0].url.startsWith('https://'));
  assert.equal(r.headers.get('x-skiff-attempts'), '0');
  return body;
}

test('client mistakes are refused locally, naming the field, with no upstream call', async () => {
  await refused(await post('/v1beta/models/gemini-2.5-flash:generateContent', { ...hello, generationConfig: { temperature: 5 } }), 400, 'generationConfig.temperature', /temperature/);
  await refused(await post('/v1beta/models/gemini-2.5-flash:generateContent', { ...hello, generationConfig: { candidateCount: 9 } }), 400, 'generationConfig.candidateCount', /candidateCount/);
  await refused(await post('/v1beta/models/gemini-2.5-flash:generateContent', { contents: [] }), 400, 'contents', /contents/);
  await refused(await post('/v1beta/models/gemini-2.5-flash:generateContent', { contents: [{ role: 'robot', parts: [{ text: 'x' }] }] }), 400, 'contents[0].role', /role/);
  await refused(await post('/v1/models/gemini-2.5-flash:generateContent', { ...hello, systemInstruction: { parts: [{ text: 'be brief' }] } }), 400, 'systemInstruction', /v1beta/);
  await refused(await post('/v1beta/models/gemini-2.5-flsh:generateContent', hello), 404, null, /Did you mean gemini-2\.5-flash\?/);
  await refused(await post('/v1beta/models/gemini-2.5-flash:embedContent', { content: { parts: [{ text: 'x' }] } }), 404, null, /embedContent/);
  assert.equal((await sim.log()).length, 0, 'a refused request reached the upstream');
});

test('streamGenerateContent and batchEmbedContents are never refused for their models', async () => {
  const s = await post('/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse', hello);
  assert.equal(s.status, 200);
  await s.text();
  const b = await post('/v1beta/models/gemini-embedding-001:batchEmbedContents', { requests: [{ model: 'models/gemini-embedding-001', content: { parts: [{ text: 'x' }] } }] });
  assert.equal(b.status, 200);
  await b.text();
});

test('a large valid request with unknown future fields goes upstream as it came', async () => {
  const body = JSON.stringify({ ...hello, futureFeature: { knob: 1 }, generationConfig: { temperature: 0.5, futureParam: true }, padding: 'p'.repeat(1 << 20) });
  const r = await post('/v1beta/models/gemini-2.5-flash:generateContent', body);
  await r.text();
  const log = await sim.log();
  assert.equal(log.length, 1, 'skiff refused a request with unknown fields');
  assert.equal(log[0].body_bytes, Buffer.byteLength(body));
  assert.equal(log[0].body_fnv, fnv1a64(body), 'the body was changed on its way upstream');
});

test('upstream errors keep their code and message and gain the guide\'s advice', async () => {
  await sim.script({ match: {}, reply: { status: 403, message: 'The caller does not have permission', errorStatus: 'PERMISSION_DENIED' }, times: 1 });
  const r = await post('/v1beta/models/gemini-2.5-flash:generateContent', hello);
  // One key only: it is retired by the 403 and the upstream's error is what the client gets.
  assert.equal(r.status, 403);
  const body = await r.json();
  assert.equal(body.error.status, 'PERMISSION_DENIED');
  assert.equal(body.error.message, 'The caller does not have permission');
  const help = body.error.details.find((d) => d['@type'].endsWith('google.rpc.Help'));
  assert.ok(help, 'no Help detail was added');
  assert.match(JSON.stringify(help), /Generative Language API|restriction/i);
  assert.match(r.headers.get('x-skiff-hint') ?? '', /key/i);
});

test('a response that ends in SAFETY carries x-skiff-finish', async () => {
  // A fresh skiff: the previous test retired the only key.
  const s2 = await startServe(`
upstreams: {gemini: {base_url: ${sim.url}, keys: [${KEY}]}}
storage: {sqlite: ""}
workers: 1
`);
  try {
    const blocked = { candidates: [{ content: { parts: [{ text: 'I cannot' }], role: 'model' }, finishReason: 'SAFETY', index: 0 }], modelVersion: 'gemini-2.5-flash', responseId: 'x' };
    await sim.script({ match: { method: 'generateContent' }, reply: { body: blocked, status: 200 }, times: 1 });
    const r = await fetch(`${s2.url}/v1beta/models/gemini-2.5-flash:generateContent`, { method: 'POST', body: JSON.stringify(hello) });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-skiff-finish'), 'SAFETY');
    await r.text();
    const ok = await fetch(`${s2.url}/v1beta/models/gemini-2.5-flash:generateContent`, { method: 'POST', body: JSON.stringify(hello) });
    assert.equal(ok.headers.get('x-skiff-finish'), null, 'a healthy answer was flagged');
    await ok.text();
  } finally {
    await s2.stop();
  }
});

test('the catalog is read from the upstream at start, with a pool key', async () => {
  const s3 = await startServe(`
upstreams: {gemini: {base_url: ${sim.url}, keys: [${KEY}]}}
catalog: {refresh_s: 600}
storage: {sqlite: ""}
`);
  try {
    let calls = [];
    for (let i = 0; i < 40 && calls.length === 0; i++) {
      await sleep(50);
      calls = (await sim.log()).filter((e) => e.method === 'models.list');
    }
    assert.ok(calls.length >= 1, 'no models.list call');
    assert.equal(calls[0].key, KEY);
    // The sim logs the call before skiff has read the answer and logged the refresh.
    for (let i = 0; i < 40 && !/"event":"catalog_refresh"/.test(s3.stderr); i++) await sleep(50);
    assert.match(s3.stderr, /"event":"catalog_refresh".*"models":\d+/);
  } finally {
    await s3.stop();
  }
});

test('the repetition guard stops a stuck stream, ends it with finishReason OTHER, and cancels the upstream', async () => {
  const ev = (t) => ({ candidates: [{ content: { parts: [{ text: t }], role: 'model' }, index: 0 }], modelVersion: 'gemini-2.5-flash', responseId: 'r' });
  const stuck = [ev('Here is the answer. '), ...Array.from({ length: 60 }, () => ev('I will repeat this sentence forever. '))];
  const yaml = (guard) => `
upstreams: {gemini: {base_url: ${sim.url}, keys: [${KEY}]}}
quality: {repetition_guard: ${guard}}
storage: {sqlite: ""}
workers: 1
`;
  const guarded = await startServe(yaml('on'));
  try {
    await sim.script({ match: { method: 'streamGenerateContent' }, reply: { stream: stuck, chunkMs: 10 }, times: 1 });
    const r = await fetch(`${guarded.url}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse`, { method: 'POST', body: JSON.stringify(hello) });
    assert.equal(r.status, 200);
    const text = await r.text(); // a clean end: a deliberate finish, not a failure
    const events = text.split('\r\n\r\n').filter(Boolean);
    assert.ok(events.length < stuck.length, `all ${events.length} events were forwarded`);
    const last = JSON.parse(events.at(-1).slice(6));
    assert.equal(last.candidates[0].finishReason, 'OTHER');
    assert.match(last.candidates[0].finishMessage, /skiff stopped the stream/);
    await sleep(200);
    assert.ok((await sim.log()).at(-1).aborted, 'the upstream call went on after the guard stopped it');
    assert.match(guarded.stderr, /"event":"repetition_stopped"/);
  } finally {
    await guarded.stop();
  }
  // Off (the default), the same stream passes untouched.
  const plain = await startServe(yaml('off'));
  try {
    await sim.script({ match: { method: 'streamGenerateContent' }, reply: { stream: stuck, chunkMs: 1 }, times: 1 });
    const r = await fetch(`${plain.url}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse`, { method: 'POST', body: JSON.stringify(hello) });
    const events = (await r.text()).split('\r\n\r\n').filter(Boolean);
    assert.equal(events.length, stuck.length);
  } finally {
    await plain.stop();
  }
});

test('quality.retry_recitation asks once more, with a temperature of at least 0.8', async () => {
  const s4 = await startServe(`
upstreams: {gemini: {base_url: ${sim.url}, keys: [${KEY}]}}
quality: {retry_recitation: true}
storage: {sqlite: ""}
`);
  try {
    const recited = { candidates: [{ content: { parts: [{ text: 'Once upon' }], role: 'model' }, finishReason: 'RECITATION', index: 0 }], modelVersion: 'gemini-2.5-flash', responseId: 'x' };
    await sim.script({ match: { method: 'generateContent' }, reply: { body: recited, status: 200 }, times: 1 });
    const r = await fetch(`${s4.url}/v1beta/models/gemini-2.5-flash:generateContent`, { method: 'POST', body: JSON.stringify({ ...hello, generationConfig: { temperature: 0.2 } }) });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-skiff-attempts'), '2');
    assert.equal((await r.json()).candidates[0].finishReason, 'STOP');
    const log = await sim.log();
    assert.equal(log.length, 2);
    const sent = JSON.stringify({ ...hello, generationConfig: { temperature: 0.2 } });
    assert.equal(log[0].body_fnv, fnv1a64(sent), 'the first attempt was not the client\'s body');
    assert.notEqual(log[1].body_fnv, log[0].body_fnv, 'the second attempt did not change the temperature');
  } finally {
    await s4.stop();
  }
});
