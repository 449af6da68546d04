// Key health against hostile or careless clients (issue 10, items 1 and 2): what a client
// chooses (model names, resources of another project) never rests or retires a pool key,
// and a key is retired only when a probe with it confirms the upstream's verdict.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startSim, startServe, logged } from './lib.mjs';

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

// Google's 403 for a file that belongs to another project (or does not exist): it names no
// key. The sim refuses it on the generation call only; GET models/x with the key succeeds.
// skiff looks up the owner of a file it did not create first (doors/gemini/lookup.h): the
// script has the first key own it, so the generation goes out and meets the 403.
const fileOfAnotherProject = {
  status: 403,
  errorStatus: 'PERMISSION_DENIED',
  message: 'You do not have permission to access the File files/abc123 or it may not exist.',
};
const withFile = {
  contents: [{ role: 'user', parts: [{ text: 'Describe it' }, { fileData: { mimeType: 'image/png', fileUri: 'https://generativelanguage.googleapis.com/v1beta/files/abc123' } }] }],
};

test('a 403 about another project\'s file retires nothing, is not re-sent, and the next request succeeds', async () => {
  await withServe({}, async (serve) => {
    await sim.script({ match: { method: 'files.get' }, reply: { status: 200, body: { name: 'files/abc123' } }, times: 1 });
    await sim.script({ match: { method: 'generateContent' }, reply: fileOfAnotherProject, times: 1 });
    const r = await gen(serve, 'gemini-2.5-flash', { body: withFile });
    assert.equal(r.status, 403);
    assert.equal(r.headers.get('x-skiff-attempts'), '1');
    assert.match(r.headers.get('x-skiff-hint') ?? '', /not accessible with skiff's keys\); no key was blamed/);
    const body = await r.json();
    assert.equal(body.error.message, fileOfAnotherProject.message);
    const log = await sim.log();
    assert.deepEqual(log.map((e) => [e.method, e.status]), [['files.get', 200], ['generateContent', 403]], 'the generation was re-sent');
    const h = await health(serve);
    assert.equal(h.usable_keys, 2);
    // The key that got the 403 keeps serving, as does the other one.
    const used = new Set();
    for (let i = 0; i < 4; i++) {
      const x = await gen(serve);
      assert.equal(x.status, 200);
      used.add(x.headers.get('x-skiff-key'));
      await x.text();
    }
    assert.equal(used.size, 2);
    assert.doesNotMatch(serve.stderr, /"state":"retired"/);
  });
});

// What a client header naming another project (X-Goog-User-Project) earns: a refusal that
// names a project, SERVICE_DISABLED, although the key itself works.
const serviceDisabledElsewhere = {
  status: 403,
  errorStatus: 'PERMISSION_DENIED',
  message: 'Generative Language API has not been used in project not-mine before or it is disabled.',
  details: [{
    '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
    reason: 'SERVICE_DISABLED',
    domain: 'googleapis.com',
    metadata: { consumer: 'projects/not-mine', service: 'generativelanguage.googleapis.com' },
  }],
};

test('a refusal that names the key but that a probe with it contradicts is answered, not re-sent, and blames no key', async () => {
  await withServe({}, async (serve) => {
    await sim.script({ match: { method: 'generateContent' }, reply: serviceDisabledElsewhere, times: 1 });
    const r = await gen(serve);
    assert.equal(r.status, 403);
    assert.equal(r.headers.get('x-skiff-attempts'), '1');
    assert.match(r.headers.get('x-skiff-hint') ?? '', /a probe with the same key succeeded/);
    const body = await r.json();
    assert.equal(body.error.details[0].reason, 'SERVICE_DISABLED');
    const log = await sim.log();
    // The probe is a models.get of the same model with the same key, and nothing else went.
    assert.deepEqual(log.map((e) => [e.method, e.model, e.status]),
      [['generateContent', 'gemini-2.5-flash', 403], ['models.get', 'gemini-2.5-flash', 200]]);
    assert.equal(log[1].key, log[0].key);
    assert.equal(log[1].http_method, 'GET');
    assert.equal(log[1].body_bytes, 0);
    assert.equal((await health(serve)).usable_keys, 2);
    await logged(serve, /"event":"key_probe".*"result":"key-ok"/);
    for (let i = 0; i < 4; i++) { const x = await gen(serve); assert.equal(x.status, 200); await x.text(); }
    assert.equal(new Set((await sim.log()).slice(2).map((e) => e.key)).size, 2, 'a key was left out');
    assert.doesNotMatch(serve.stderr, /"state":"retired"/);
  });
});

test('a genuinely invalid key is retired after the probe confirms it, and the request succeeds on the next key', async () => {
  const bad = 'NotAGeminiKey-keyhealth-000000000000001';
  await withServe({ keys: [bad, K[0]] }, async (serve) => {
    const r = await gen(serve);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-skiff-attempts'), '2');
    assert.equal(r.headers.get('x-skiff-key'), 'key#2');
    await r.text();
    const log = await sim.log();
    assert.deepEqual(log.map((e) => [e.method, e.key === bad ? 'bad' : 'good', e.status]),
      [['generateContent', 'bad', 400], ['models.get', 'bad', 400], ['generateContent', 'good', 200]]);
    assert.equal((await health(serve)).usable_keys, 1);
    await logged(serve, /"event":"key_probe".*"result":"key-bad"/);
    await logged(serve, /"key":"key#1","model":"\*","state":"retired"/);
    // Retired: never used again, and never probed again.
    for (let i = 0; i < 3; i++) { const x = await gen(serve); assert.equal(x.status, 200); await x.text(); }
    assert.equal((await sim.log()).filter((e) => e.key === bad).length, 2);
  });
});

test('a probe that gets no answer retires nothing: the call is retried as transient', async () => {
  await withServe({}, async (serve) => {
    await sim.script([
      { match: { method: 'generateContent' }, reply: serviceDisabledElsewhere, times: 1 },
      { match: { method: 'models.get' }, reply: { reset: true }, times: 0 },
    ]);
    const r = await gen(serve);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-skiff-attempts'), '2');
    await r.text();
    const log = await sim.log();
    const methods = log.map((e) => e.method);
    assert.deepEqual([methods[0], methods.at(-1)], ['generateContent', 'generateContent']);
    assert.ok(methods.slice(1, -1).every((m) => m === 'models.get') && methods.length >= 3, methods.join());
    assert.ok(log.slice(1, -1).every((e) => e.reset));
    assert.equal((await health(serve)).usable_keys, 2);
    await logged(serve, /"event":"key_probe".*"result":"unknown"/);
    assert.doesNotMatch(serve.stderr, /"state":"retired"/);
  });
});

test('calls refused at once for the same key wait for one probe, not one each', async () => {
  const bad = 'NotAGeminiKey-keyhealth-000000000000002';
  await withServe({ keys: [bad] }, async (serve) => {
    // The probe takes a while, so every call's refusal arrives while it runs.
    await sim.script({ match: { method: 'models.get' }, reply: { latencyMs: 400 }, times: 0 });
    const rs = await Promise.all([0, 1, 2, 3].map(() => gen(serve)));
    for (const r of rs) {
      assert.equal(r.status, 400);
      assert.equal((await r.json()).error.details[0].reason, 'API_KEY_INVALID');
    }
    const log = await sim.log();
    assert.equal(log.filter((e) => e.method === 'generateContent').length, 4);
    assert.equal(log.filter((e) => e.method === 'models.get').length, 1, 'the key was probed more than once');
    assert.equal((await health(serve)).usable_keys, 0);
    assert.equal(serve.stderr.match(/"state":"retired"/g).length, 1);
  });
});
