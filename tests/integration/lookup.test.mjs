// Resources skiff did not create (issue 16): a file uploaded straight to the upstream with one
// of the pool's keys is found with a metadata GET (files/{id}) on each key in turn, never by
// sending the generation to key after key; the owner is recorded, and a file no key can see is
// Google's 403 at once (remembered for a while; a transient failure is not remembered). Its own
// sim and skiff: the sim's file ids repeat after a reset, so an earlier test's owners would
// stand in for these.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { GoogleGenAI } from '@google/genai';
import { startSim, startServe, waitFor, sleep } from './lib.mjs';

const K = ['AIzaLkpOne00000000000000000000000000001', 'AIzaLkpTwo00000000000000000000000000002',
  'AIzaLkpThree000000000000000000000000003', 'AIzaLkpFour0000000000000000000000000004'];
const MODEL = 'gemini-2.5-flash';
let sim, serve;
const config = (extra = '') => `
upstreams:
  gemini:
    base_url: ${sim.url}
    keys: [${K.join(', ')}]
retry: {max_attempts: 4, base_delay_ms: 10, max_delay_ms: 40, deadline_ms: 8000}
storage: {sqlite: ""}
workers: 1
${extra}`;

before(async () => {
  sim = await startSim(['--rpm', 'unlimited', '--tpm', 'unlimited', '--rpd', 'unlimited']);
  serve = await startServe(config());
});
after(async () => {
  await serve?.stop();
  await sim?.stop();
  for (const k of K) assert.ok(!serve.stderr.includes(k), 'a key appeared in the logs');
});

const keyOf = (e) => e.key;

// Straight to the sim with one of the pool's keys: skiff never sees this upload.
const direct = (key) => new GoogleGenAI({ apiKey: key, httpOptions: { baseUrl: sim.url } });
// The sim's log after a mark (its reset would also drop the files uploaded directly).
const mark = async () => (await sim.log()).at(-1)?.seq ?? -1;
const logSince = async (seq) => (await sim.log()).filter((e) => e.seq > seq);
const genWith = (uri, opts = {}, to = serve) => fetch(`${to.url}/v1beta/models/${MODEL}:generateContent`, {
  method: 'POST', headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'Read it' },
    { fileData: { fileUri: uri, mimeType: 'text/plain' } }] }] }),
  ...opts,
});

test('a file uploaded elsewhere with key #3 is found by GET files/{id} probes; the generation goes out once, on key #3', async () => {
  const f = await direct(K[2]).files.upload({ file: new Blob([Buffer.alloc(2048, 'x')], { type: 'text/plain' }) });
  let m = await mark();
  const r = await genWith(f.uri);
  assert.equal(r.status, 200, await r.clone().text());
  assert.equal(r.headers.get('x-skiff-key'), 'key#3');
  const log = await logSince(m);
  const probes = log.filter((e) => e.method === 'files.get');
  assert.ok(probes.length >= 1 && probes.length <= 3, `probes: ${probes.map(keyOf)}`);
  assert.ok(probes.every((e) => e.path.endsWith(`/v1beta/${f.name}`) && e.http_method === 'GET'));
  assert.equal(probes.at(-1).key, K[2], 'the last probe is the owner');
  assert.deepEqual(probes.map((e) => e.status), [...probes.slice(0, -1).map(() => 403), 200]);
  const gens = log.filter((e) => e.method === 'generateContent');
  assert.deepEqual(gens.map(keyOf), [K[2]], 'exactly one generation, on the owner');
  assert.ok(probes.at(-1).seq < gens[0].seq, 'the lookup came before the generation');
  // The owner is recorded: the next call does no lookup.
  m = await mark();
  const again = await genWith(f.uri);
  assert.equal(again.status, 200);
  assert.deepEqual((await logSince(m)).map((e) => [e.method, e.key]), [['generateContent', K[2]]]);
});

test('a file no pool key can see is Google\'s 403 at once, without a generation; the second request does no lookup', async () => {
  const uri = `${sim.url}/v1beta/files/nobodyhas42`;
  let m = await mark();
  const r = await genWith(uri);
  assert.equal(r.status, 403);
  const err = (await r.json()).error;
  assert.equal(err.status, 'PERMISSION_DENIED');
  assert.match(err.message, /permission to access the File nobodyhas42.*none can see files\/nobodyhas42/);
  const log = await logSince(m);
  assert.equal(log.filter((e) => e.method === 'generateContent').length, 0, 'the generation went upstream');
  assert.deepEqual(log.filter((e) => e.method === 'files.get').map(keyOf).sort(), [...K].sort(), 'one probe per key');
  m = await mark();
  const again = await genWith(uri);
  assert.equal(again.status, 403);
  assert.equal((await logSince(m)).length, 0, 'the second request went upstream');
});

test('a lookup that fails with 503s records nothing: the next request looks again', async () => {
  const f = await direct(K[1]).files.upload({ file: new Blob([Buffer.alloc(512, 'y')], { type: 'text/plain' }) });
  let m = await mark();
  await sim.script({ match: { method: 'files.get' }, reply: { status: 503 }, times: 4 });
  const r = await genWith(f.uri);
  await r.arrayBuffer();
  assert.equal((await logSince(m)).filter((e) => e.method === 'files.get').length, 4, JSON.stringify(await logSince(m)));
  m = await mark();
  const again = await genWith(f.uri);
  assert.equal(again.status, 200, 'a transient failure was remembered as "no key owns it"');
  assert.equal(again.headers.get('x-skiff-key'), 'key#2');
  const log = await logSince(m);
  assert.ok(log.some((e) => e.method === 'files.get'), 'no lookup the second time');
  assert.deepEqual(log.filter((e) => e.method === 'generateContent').map(keyOf), [K[1]]);
});

test('files.get through skiff on a file uploaded elsewhere goes to its owner after the lookup', async () => {
  const f = await direct(K[3]).files.upload({ file: new Blob([Buffer.alloc(256, 'z')], { type: 'text/plain' }) });
  const m = await mark();
  const r = await fetch(`${serve.url}/v1beta/${f.name}`);
  assert.equal(r.status, 200);
  assert.equal((await r.json()).name, f.name);
  assert.equal(r.headers.get('x-skiff-key'), 'key#4');
  const gets = await logSince(m);
  assert.deepEqual(gets.map((e) => [e.method, e.key, e.status]),
    [['files.get', K[0], 403], ['files.get', K[1], 403], ['files.get', K[2], 403], ['files.get', K[3], 200], ['files.get', K[3], 200]]);
});

test('a client that goes away during the lookup: the probe is cancelled, nothing is sent after it', async () => {
  const f = await direct(K[1]).files.upload({ file: new Blob([Buffer.alloc(128, 'w')], { type: 'text/plain' }) });
  const m = await mark();
  await sim.script({ match: { method: 'files.get' }, reply: { latencyMs: 3000 }, times: 1 });
  const ac = new AbortController();
  const gone = genWith(f.uri, { signal: ac.signal }).catch((e) => e);
  await waitFor('the first probe under way', async () => (await logSince(m)).length === 1);
  ac.abort();
  assert.equal((await gone).name, 'AbortError');
  await waitFor('the probe cancelled', async () => (await logSince(m))[0].aborted === true);
  await sleep(200);
  assert.deepEqual((await logSince(m)).map((e) => e.method), ['files.get'], 'a call went out after the client left');
  const ok = await genWith(f.uri);
  assert.equal(ok.status, 200, 'skiff still serves');
});

test('a lookup still under way when the drain ends is a 503 that says skiff is shutting down', async () => {
  const s2 = await startServe(config('shutdown: {drain_timeout_ms: 300}'));
  try {
    const f = await direct(K[0]).files.upload({ file: new Blob([Buffer.alloc(64, 'v')], { type: 'text/plain' }) });
    const m = await mark();
    await sim.script({ match: { method: 'files.get' }, reply: { latencyMs: 5000 }, times: 1 });
    const waiting = genWith(f.uri, {}, s2);
    await waitFor('the first probe under way', async () => (await logSince(m)).length === 1);
    const exit = new Promise((resolve) => s2.proc.once('exit', (code) => resolve(code)));
    s2.proc.kill('SIGTERM');
    const w = await waiting;
    assert.equal(w.status, 503);
    assert.match((await w.json()).error.message, /shutting down/);
    assert.equal(await exit, 0, s2.stderr.slice(-2000));
    assert.deepEqual((await logSince(m)).map((e) => e.method), ['files.get'], 'the generation went out');
  } finally {
    await s2.stop();
  }
});
