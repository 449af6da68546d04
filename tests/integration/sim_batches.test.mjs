// skiff sim's batches (issue 16): batchGenerateContent and asyncBatchEmbedContent with inlined
// requests, through @google/genai: create, get (polled from PENDING/RUNNING to SUCCEEDED
// after --batch-ms), list, cancel and delete; the answers are the ones generateContent gives
// for the same prompt; another project's (key's) batch is 403 PERMISSION_DENIED.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { GoogleGenAI } from '@google/genai';
import { startSim, sleep } from './lib.mjs';

const KEY_A = 'AIzaSyBatchProjectA00000000000000000001';
const KEY_B = 'AIzaSyBatchProjectB00000000000000000002';
const MODEL = 'gemini-2.5-flash';
const BATCH_MS = 600;

let sim;
before(async () => {
  sim = await startSim(['--seed', '7', '--keys', 'AIza*', '--rpm', 'unlimited', '--tpm', 'unlimited',
    '--rpd', 'unlimited', '--batch-ms', String(BATCH_MS)]);
});
after(async () => { await sim?.stop(); });

const sdk = (apiKey) => new GoogleGenAI({ apiKey, httpOptions: { baseUrl: sim.url } });
const ask = (text) => ({ contents: [{ role: 'user', parts: [{ text }] }], metadata: { key: text } });

async function untilDone(ai, name) {
  const states = [];
  for (let i = 0; i < 100; i++) {
    const b = await ai.batches.get({ name });
    if (states.at(-1) !== b.state) states.push(b.state);
    if (b.state === 'JOB_STATE_SUCCEEDED' || b.state === 'JOB_STATE_CANCELLED') return { b, states };
    await sleep(50);
  }
  throw new Error(`batch ${name} never finished: ${states}`);
}

test('batches.create with inlined requests, polled to its end: the answers generateContent gives', async () => {
  await sim.reset();
  const ai = sdk(KEY_A);
  const t0 = Date.now();
  const job = await ai.batches.create({
    model: MODEL,
    src: [ask('Name a harbour.'), ask('Name a lighthouse.')],
    config: { displayName: 'two questions' },
  });
  assert.match(job.name, /^batches\/[a-z0-9]{16}$/);
  assert.equal(job.displayName, 'two questions');
  assert.equal(job.model, `models/${MODEL}`);
  assert.equal(job.state, 'JOB_STATE_PENDING');
  assert.equal(job.dest, undefined, 'no output before the batch ends');

  const { b, states } = await untilDone(ai, job.name);
  assert.ok(Date.now() - t0 >= BATCH_MS - 50, `ended after ${Date.now() - t0} ms`);
  assert.deepEqual(states.at(-1), 'JOB_STATE_SUCCEEDED');
  assert.ok(states.includes('JOB_STATE_RUNNING') || states.length === 1, String(states));
  const out = b.dest.inlinedResponses;
  assert.equal(out.length, 2);
  const direct = await ai.models.generateContent({ model: MODEL, contents: 'Name a harbour.' });
  assert.equal(out[0].response.candidates[0].content.parts[0].text, direct.text, 'the same prompt gives the same text');
  assert.equal(out[0].response.candidates[0].finishReason, 'STOP');
  assert.deepEqual(out.map((o) => o.metadata?.key), ['Name a harbour.', 'Name a lighthouse.']);
  assert.ok(b.endTime && b.createTime);
});

test('asyncBatchEmbedContent: embeddings of each inlined request', async () => {
  await sim.reset();
  const ai = sdk(KEY_A);
  const job = await ai.batches.createEmbeddings({
    model: 'gemini-embedding-001',
    src: { inlinedRequests: { contents: [{ parts: [{ text: 'harbour' }] }, { parts: [{ text: 'quay' }] }],
      config: { outputDimensionality: 8 } } },
  });
  const { b } = await untilDone(ai, job.name);
  const embs = b.dest.inlinedEmbedContentResponses;
  assert.equal(embs.length, 2);
  assert.equal(embs[0].response.embedding.values.length, 8);
  assert.notDeepEqual(embs[0].response.embedding.values, embs[1].response.embedding.values);
});

test('list, cancel and delete; another key gets 403 PERMISSION_DENIED', async () => {
  await sim.reset();
  const ai = sdk(KEY_A);
  const a = await ai.batches.create({ model: MODEL, src: [ask('one')] });
  const c = await ai.batches.create({ model: MODEL, src: [ask('two')] });
  await sdk(KEY_B).batches.create({ model: MODEL, src: [ask('elsewhere')] });
  const names = [];
  for await (const x of await ai.batches.list({ config: { pageSize: 1 } })) names.push(x.name);
  assert.deepEqual(names.sort(), [a.name, c.name].sort(), 'only the caller project\'s batches');

  await ai.batches.cancel({ name: c.name });
  const { b } = await untilDone(ai, c.name);
  assert.equal(b.state, 'JOB_STATE_CANCELLED');
  assert.equal(b.dest, undefined);

  await assert.rejects(sdk(KEY_B).batches.get({ name: a.name }), (e) => {
    assert.equal(e.status, 403);
    assert.match(e.message, /PERMISSION_DENIED/);
    return true;
  });
  await ai.batches.delete({ name: a.name });
  await assert.rejects(ai.batches.get({ name: a.name }), (e) => e.status === 403);
});

test('a model without batchGenerateContent is 404 and an empty batch 400', async () => {
  const h = { 'content-type': 'application/json', 'x-goog-api-key': KEY_A };
  let r = await fetch(`${sim.url}/v1beta/models/gemini-embedding-001:batchGenerateContent`, {
    method: 'POST', headers: h, body: JSON.stringify({ batch: { inputConfig: { requests: { requests: [ask('x')] } } } }),
  });
  assert.equal(r.status, 404);
  assert.match((await r.json()).error.message, /not supported for batchGenerateContent/);
  r = await fetch(`${sim.url}/v1beta/models/${MODEL}:batchGenerateContent`, {
    method: 'POST', headers: h, body: JSON.stringify({ batch: { displayName: 'x' } }),
  });
  assert.equal(r.status, 400);
  assert.equal((await r.json()).error.status, 'INVALID_ARGUMENT');
});
