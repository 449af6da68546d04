// Imagen's :predict and Veo's :predictLongRunning (issue 16) with @google/genai, through skiff
// against skiff sim: generateImages returns valid PNGs; generateVideos is an Operation polled
// with getVideosOperation until done, every poll going out on the key that created it (the
// sim's log); and at the sim directly, another key's (project's) poll is 403.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { GoogleGenAI } from '@google/genai';
import { startPool, sleep } from './lib.mjs';

const K = ['AIzaPredOne0000000000000000000000000001', 'AIzaPredTwo0000000000000000000000000002',
  'AIzaPredThree00000000000000000000000003', 'AIzaPredFour000000000000000000000000004'];
const IMAGEN = 'imagen-4.0-generate-001';
const VEO = 'veo-3.0-generate-001';
const PNG_SIG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
let sim, serve, stop;

before(async () => {
  ({ sim, serve, stop } = await startPool(K, { simArgs: ['--batch-ms', '400'], attempts: 4 }));
});
after(async () => { await stop?.(); });
beforeEach(async () => { await sim.reset(); });

const ai = () => new GoogleGenAI({ apiKey: 'client-token-unused', httpOptions: { baseUrl: serve.url } });
const direct = (apiKey) => new GoogleGenAI({ apiKey, httpOptions: { baseUrl: sim.url } });

test('generateImages through skiff: two valid PNGs, the same ones for the same prompt', async () => {
  const r = await ai().models.generateImages({ model: IMAGEN, prompt: 'A lighthouse at dusk', config: { numberOfImages: 2 } });
  assert.equal(r.generatedImages.length, 2);
  const bytes = r.generatedImages.map((g) => {
    assert.equal(g.image.mimeType, 'image/png');
    const b = Buffer.from(g.image.imageBytes, 'base64');
    assert.deepEqual(b.subarray(0, 8), PNG_SIG, 'not a PNG');
    assert.equal(b.subarray(12, 16).toString(), 'IHDR');
    assert.equal(b.readUInt32BE(16), 8, 'width');
    assert.equal(b.subarray(-8, -4).toString(), 'IEND');
    return b.toString('hex');
  });
  assert.notEqual(bytes[0], bytes[1], 'two samples are the same image');
  const again = await ai().models.generateImages({ model: IMAGEN, prompt: 'A lighthouse at dusk', config: { numberOfImages: 2 } });
  assert.deepEqual(again.generatedImages.map((g) => Buffer.from(g.image.imageBytes, 'base64').toString('hex')), bytes);
  const other = await ai().models.generateImages({ model: IMAGEN, prompt: 'A tugboat', config: { numberOfImages: 1 } });
  assert.notEqual(Buffer.from(other.generatedImages[0].image.imageBytes, 'base64').toString('hex'), bytes[0]);
  const preds = (await sim.log()).filter((e) => e.method === 'models.predict');
  assert.equal(preds.length, 3, 'skiff refused or repeated a :predict');
  assert.deepEqual(preds.map((e) => e.status), [200, 200, 200]);
});

test('a :predict with sampleCount 9 is the upstream\'s 400, and no key is blamed', async () => {
  const r = await fetch(`${serve.url}/v1beta/models/${IMAGEN}:predict`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ instances: [{ prompt: 'x' }], parameters: { sampleCount: 9 } }),
  });
  assert.equal(r.status, 400);
  assert.match((await r.json()).error.message, /sampleCount must be an integer from 1 to 4/);
  const preds = (await sim.log()).filter((e) => e.method === 'models.predict');
  assert.deepEqual(preds.map((e) => e.status), [400], 'the client\'s mistake was retried on another key');
  const h = await (await fetch(`${serve.url}/healthz`)).json();
  assert.equal(h.usable_keys, K.length, JSON.stringify(h));
});

test('generateVideos through skiff, polled with getVideosOperation until done, every poll on the creating key', async () => {
  let op = await ai().models.generateVideos({ model: VEO, source: { prompt: 'Waves on a harbour wall' } });
  assert.match(op.name, new RegExp(`^models/${VEO}/operations/[a-z0-9]{12}$`));
  assert.ok(!op.done);
  let polls = 0;
  while (!op.done && polls < 100) {
    await sleep(50);
    op = await ai().operations.getVideosOperation({ operation: op });
    polls++;
  }
  assert.ok(op.done, 'the operation never finished');
  assert.ok(polls >= 2, `done after ${polls} polls: the delay did not hold`);
  const vids = op.response.generatedVideos;
  assert.equal(vids.length, 1);
  // skiff names itself in place of the upstream (veo_download.test.mjs downloads it).
  assert.match(vids[0].video.uri, new RegExp(`^${serve.url}/v1beta/files/[a-z0-9]+:download\\?alt=media$`));
  const log = await sim.log();
  const create = log.filter((e) => e.method === 'models.predictLongRunning');
  const gets = log.filter((e) => e.method === 'models.operations.get');
  assert.equal(create.length, 1);
  assert.equal(gets.length, polls);
  assert.deepEqual([...new Set(gets.map((e) => e.key))], [create[0].key], 'a poll went out on another key');
  assert.ok(gets.every((e) => e.status === 200), JSON.stringify(gets.map((e) => e.status)));
});

test('at the sim: the operation is the creating key\'s; another key\'s poll is 403, an unknown id too', async () => {
  const a = direct(K[0]), b = direct(K[1]);
  const op = await a.models.generateVideos({ model: VEO, source: { prompt: 'A crane' }, config: { numberOfVideos: 2 } });
  await assert.rejects(b.operations.getVideosOperation({ operation: op }), (e) => {
    assert.equal(e.status, 403);
    assert.match(e.message, /PERMISSION_DENIED|permission to access the Operation/);
    return true;
  });
  const r = await fetch(`${sim.url}/v1beta/models/${VEO}/operations/nosuchop0000`, { headers: { 'x-goog-api-key': K[0] } });
  assert.equal(r.status, 403);
  await sleep(450);
  const done = await a.operations.getVideosOperation({ operation: op });
  assert.ok(done.done);
  assert.equal(done.response.generatedVideos.length, 2);
});

test('the model table lists them with their methods, and the wrong method is a 404', async () => {
  const im = await direct(K[0]).models.get({ model: IMAGEN });
  assert.deepEqual(im.supportedActions, ['predict']);
  const veo = await ai().models.get({ model: VEO });
  assert.deepEqual(veo.supportedActions, ['predictLongRunning']);
  const r = await fetch(`${sim.url}/v1beta/models/${VEO}:predict`, {
    method: 'POST', headers: { 'x-goog-api-key': K[0], 'content-type': 'application/json' },
    body: JSON.stringify({ instances: [{ prompt: 'x' }] }),
  });
  assert.equal(r.status, 404);
});
