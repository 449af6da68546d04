// Veo's video download through skiff (issue 16): a finished :predictLongRunning operation names
// its video by a Files download URL of the upstream, which a client cannot use (it needs a
// pool key, and the host is Google's). skiff rewrites it to its own URL, records the file as
// the creating key's, and serves the download on that key, to the creating token only.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GoogleGenAI } from '@google/genai';
import { startServe, startPool, sleep } from './lib.mjs';

const K = ['AIzaVeoOne00000000000000000000000000001', 'AIzaVeoTwo00000000000000000000000000002',
  'AIzaVeoThree0000000000000000000000000003', 'AIzaVeoFour00000000000000000000000000004'];
const TA = 'sk-veo-alice-0000000000000000000001';
const TB = 'sk-veo-bob-000000000000000000000002';
const VEO = 'veo-3.0-generate-001';
let sim, serve, stop, video, ownerKey;

// skiff as deployed behind a TLS proxy (x-forwarded-proto: https): @google/genai's
// files.download reads the file id out of an https:// URI only (tFileName), and takes any
// other string as the id itself.
const ai = (t) => new GoogleGenAI({ apiKey: t,
  httpOptions: { baseUrl: serve.url, headers: { 'x-forwarded-proto': 'https' } } });
const httpsUrl = () => serve.url.replace(/^http:/, 'https:');
const plainUrl = (uri) => uri.replace(/^https:/, 'http:'); // what the proxy in front does

before(async () => {
  ({ sim, serve, stop } = await startPool(K, { tokens: [TA, TB], simArgs: ['--batch-ms', '200'] }));
});
after(async () => { await stop?.(); });

test("generateVideos through skiff: the finished operation's video URI names skiff, never the upstream or a key", async () => {
  let op = await ai(TA).models.generateVideos({ model: VEO, source: { prompt: 'A ferry leaving at dawn' } });
  for (let i = 0; !op.done && i < 100; i++) {
    await sleep(50);
    op = await ai(TA).operations.getVideosOperation({ operation: op });
  }
  assert.ok(op.done, 'the operation never finished');
  video = op.response.generatedVideos[0];
  const uri = video.video.uri;
  assert.match(uri, new RegExp(`^${httpsUrl()}/v1beta/files/[a-z0-9]+:download\\?alt=media$`));
  assert.ok(!uri.includes(sim.url) && !uri.includes('googleapis.com'), uri);
  for (const k of K) assert.ok(!uri.includes(k));
  // Reached over plain HTTP, skiff names itself so.
  const r = await fetch(`${serve.url}/v1beta/${op.name}`, { headers: { 'x-goog-api-key': TA } });
  const plain = (await r.json()).response.generateVideoResponse.generatedSamples[0].video.uri;
  assert.equal(plain, plainUrl(uri));
  ownerKey = (await sim.log()).find((e) => e.method === 'models.predictLongRunning').key;
});

test("ai.files.download writes the sim's bytes, fetched on the key that ran the operation", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-veo-'));
  const path = join(dir, 'video.mp4');
  const seen = (await sim.log()).length;
  await ai(TA).files.download({ file: video, downloadPath: path });
  const got = readFileSync(path);
  // The same file fetched from the sim with the owning key: the bytes it serves.
  const r = await fetch(plainUrl(video.video.uri).replace(serve.url, sim.url), { headers: { 'x-goog-api-key': ownerKey } });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'video/mp4');
  const want = Buffer.from(await r.arrayBuffer());
  assert.ok(want.length > 1000);
  assert.equal(want.subarray(4, 8).toString(), 'ftyp');
  assert.deepEqual(got, want);
  const dl = (await sim.log()).slice(seen).filter((e) => e.method === 'files.download');
  assert.equal(dl.length, 2);
  assert.equal(dl[0].key, ownerKey, 'the download went out on another key than the one that ran the operation');
  // The URI itself works through skiff for a plain HTTP client with the creator's token.
  const plain = await fetch(plainUrl(video.video.uri), { headers: { 'x-goog-api-key': TA } });
  assert.equal(plain.status, 200);
  assert.deepEqual(Buffer.from(await plain.arrayBuffer()), want);
});

test("another token's download is a 404, and nothing goes upstream", async () => {
  const seen = (await sim.log()).length;
  const dir = mkdtempSync(join(tmpdir(), 'skiff-veo-'));
  await assert.rejects(ai(TB).files.download({ file: video, downloadPath: join(dir, 'v.mp4') }), (e) => {
    assert.equal(e.status, 404);
    return true;
  });
  const r = await fetch(plainUrl(video.video.uri), { headers: { 'x-goog-api-key': TB } });
  assert.equal(r.status, 404);
  assert.equal((await r.json()).error.status, 'NOT_FOUND');
  assert.equal((await sim.log()).length, seen);
});

test("a skiff that did not relay the operation finds the video's key with a files.get lookup, and downloads on it", async () => {
  const at = plainUrl(video.video.uri).replace(serve.url, sim.url);
  const meta = await fetch(at.replace(/:download.*$/, ''), { headers: { 'x-goog-api-key': ownerKey } });
  assert.equal(meta.status, 200);
  const m = await meta.json();
  assert.equal(m.source, 'GENERATED');
  assert.equal(m.mimeType, 'video/mp4');
  const other = K.find((k) => k !== ownerKey);
  assert.equal((await fetch(at.replace(/:download.*$/, ''), { headers: { 'x-goog-api-key': other } })).status, 403);

  const fresh = await startServe(`
upstreams:
  gemini:
    base_url: ${sim.url}
    keys: [${K.join(', ')}]
retry: {max_attempts: 2, base_delay_ms: 10, max_delay_ms: 40, deadline_ms: 8000}
storage: {sqlite: ""}
workers: 1
`);
  try {
    const seen = (await sim.log()).length;
    const id = /files\/([a-z0-9]+):/.exec(at)[1];
    const r = await fetch(`${fresh.url}/v1beta/files/${id}:download?alt=media`);
    assert.equal(r.status, 200);
    assert.equal(Buffer.from(await r.arrayBuffer()).subarray(4, 8).toString(), 'ftyp');
    const log = (await sim.log()).slice(seen);
    const dl = log.filter((e) => e.method === 'files.download');
    assert.deepEqual(dl.map((e) => [e.key, e.status]), [[ownerKey, 200]], 'one download, on the owning key');
    const gets = log.filter((e) => e.method === 'files.get');
    assert.ok(gets.length >= 1 && gets.at(-1).key === ownerKey && gets.at(-1).status === 200, JSON.stringify(gets));
  } finally {
    await fresh.stop();
  }
});

test('at the sim: another key gets 403 for the video; once it expires, its owner gets the 403 too, through skiff', async () => {
  const at = plainUrl(video.video.uri).replace(serve.url, sim.url);
  const other = K.find((k) => k !== ownerKey);
  let r = await fetch(at, { headers: { 'x-goog-api-key': other } });
  assert.equal(r.status, 403);
  assert.match((await r.json()).error.message, /You do not have permission to access the File .* or it may not exist/);
  const id = /files\/([a-z0-9]+):/.exec(at)[1];
  r = await fetch(`${sim.url}/_sim/expire`, { method: 'POST', body: JSON.stringify({ name: `files/${id}` }) });
  assert.equal(r.status, 200);
  r = await fetch(at, { headers: { 'x-goog-api-key': ownerKey } });
  assert.equal(r.status, 403);
  r = await fetch(plainUrl(video.video.uri), { headers: { 'x-goog-api-key': TA } });
  assert.equal(r.status, 403);
  assert.equal((await r.json()).error.status, 'PERMISSION_DENIED');
  const h = await (await fetch(`${serve.url}/healthz`)).json();
  assert.equal(h.usable_keys, K.length, 'a key was blamed for an expired file');
});
