// Stored resources through skiff (issue 16): files (resumable upload through skiff's own
// upload session), cachedContents and batches relayed with @google/genai, and affinity: every
// call that names a resource goes out on the key that created it (its retries too), and a
// request that names the resources of two keys is a 400 that names both.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { GoogleGenAI, createPartFromUri } from '@google/genai';
import { startPool, sleep } from './lib.mjs';

const K = ['AIzaResOne00000000000000000000000000001', 'AIzaResTwo00000000000000000000000000002',
  'AIzaResThree000000000000000000000000003', 'AIzaResFour0000000000000000000000000004'];
const MODEL = 'gemini-2.5-flash';
let sim, serve, stop;

before(async () => {
  ({ sim, serve, stop } = await startPool(K, { simArgs: ['--batch-ms', '300'], attempts: 4 }));
});
after(async () => { await stop?.(); });
beforeEach(async () => { await sim.reset(); });

const ai = () => new GoogleGenAI({ apiKey: 'client-token-unused', httpOptions: { baseUrl: serve.url } });
const keyOf = (e) => e.key;

async function upload(name, bytes) {
  const data = Buffer.alloc(bytes, name[0]);
  return ai().files.upload({ file: new Blob([data], { type: 'text/plain' }), config: { displayName: name } });
}

test('files.upload of 5 MB through skiff: the chunks come back to skiff and go out on the key that started it', async () => {
  const f = await upload('harbour', 5 * 1024 * 1024);
  assert.match(f.name, /^files\/[a-z0-9]+$/);
  assert.equal(Number(f.sizeBytes), 5 * 1024 * 1024);
  const ups = (await sim.log()).filter((e) => e.method === 'files.upload');
  assert.equal(ups.length, 2, 'a start and one final chunk');
  assert.equal(new Set(ups.map(keyOf)).size, 1, `the upload's calls used keys ${ups.map(keyOf)}`);
  // The client never saw the upstream's upload URL: its chunk came to skiff.
  const got = await ai().files.get({ name: f.name });
  assert.equal(got.name, f.name);
  const gets = (await sim.log()).filter((e) => e.method === 'files.get');
  assert.deepEqual(gets.map(keyOf), [ups[0].key], 'files.get went to the owner');
});

test('a generation naming a file goes out on its owner, the retry after a 503 too', async () => {
  const f = await upload('quay', 64 * 1024);
  const owner = (await sim.log()).find((e) => e.method === 'files.upload').key;
  await sim.script({ match: { model: MODEL }, reply: { status: 503 }, times: 1 });
  const r = await ai().models.generateContent({
    model: MODEL,
    contents: [{ role: 'user', parts: [{ text: 'Summarise it' }, createPartFromUri(f.uri, f.mimeType)] }],
  });
  assert.ok(r.text.length > 0);
  const gens = (await sim.log()).filter((e) => e.method === 'generateContent');
  assert.equal(gens.length, 2, 'a 503, then the answer');
  assert.deepEqual(gens.map(keyOf), [owner, owner], 'every attempt on the owning key');
  assert.deepEqual(gens.map((e) => e.status), [503, 200]);
});

test('a generation naming files of two keys is a 400 that names both, and costs no upstream call', async () => {
  const a = await upload('one', 1024);
  const b = await upload('two', 1024);
  const owners = (await sim.log()).filter((e) => e.method === 'files.upload').map(keyOf);
  assert.notEqual(owners[0], owners[2], 'the two uploads went to the same key (the pool spreads them)');
  const seen = (await sim.log()).length;
  const r = await fetch(`${serve.url}/v1beta/models/${MODEL}:generateContent`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'Compare' },
      { fileData: { fileUri: a.uri, mimeType: 'text/plain' } }, { fileData: { fileUri: b.uri, mimeType: 'text/plain' } }] }] }),
  });
  assert.equal(r.status, 400);
  const msg = (await r.json()).error.message;
  assert.match(msg, new RegExp(`${a.name}.*${b.name}`));
  assert.match(msg, /key#\d.*key#\d/);
  assert.equal((await sim.log()).length, seen, 'the request went upstream');
});

test('caches.create, then a generation with the cache, on the cache\'s key', async () => {
  const c = await ai().caches.create({
    model: MODEL,
    config: { contents: [{ role: 'user', parts: [{ text: 'The harbour at night. '.repeat(400) }] }], ttl: '300s' },
  });
  const owner = (await sim.log()).find((e) => e.method === 'cachedContents.create').key;
  const r = await ai().models.generateContent({ model: MODEL, contents: 'What is there?', config: { cachedContent: c.name } });
  assert.ok(r.usageMetadata.cachedContentTokenCount > 0, JSON.stringify(r.usageMetadata));
  const gen = (await sim.log()).filter((e) => e.method === 'generateContent');
  assert.deepEqual(gen.map(keyOf), [owner]);
  await ai().caches.delete({ name: c.name });
});

test('batches.create, polled to its end on the batch\'s key', async () => {
  const job = await ai().batches.create({ model: MODEL, src: [{ contents: [{ role: 'user', parts: [{ text: 'Name a harbour.' }] }] }] });
  const owner = (await sim.log()).find((e) => e.method === 'models.batchGenerateContent').key;
  let b;
  for (let i = 0; i < 60; i++) {
    b = await ai().batches.get({ name: job.name });
    if (b.state === 'JOB_STATE_SUCCEEDED') break;
    await sleep(50);
  }
  assert.equal(b.state, 'JOB_STATE_SUCCEEDED');
  assert.equal(b.dest.inlinedResponses.length, 1);
  const gets = (await sim.log()).filter((e) => e.method === 'batches.get');
  assert.ok(gets.length >= 1);
  assert.deepEqual([...new Set(gets.map(keyOf))], [owner], 'a poll went to another key');
});

test('an upload chunk for a session skiff does not know is a 404 that says to start again', async () => {
  const r = await fetch(`${serve.url}/upload/v1beta/files?upload_id=nope`, {
    method: 'POST', headers: { 'x-goog-upload-command': 'upload, finalize', 'x-goog-upload-offset': '0' }, body: 'x',
  });
  assert.equal(r.status, 404);
  assert.match((await r.json()).error.message, /no upload session "nope".*start the upload again/);
  assert.equal((await sim.log()).length, 0);
});
