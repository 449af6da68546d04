// Affinity survives a restart of skiff (issue 16): the owners of stored resources and the
// resumable upload sessions are kept in storage.sqlite, so an upload interrupted by a
// restart between its chunks completes on the key that started it, and a file uploaded
// before the restart is still pinned to its owner after it.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GoogleGenAI, createPartFromUri } from '@google/genai';
import { startSim, startServe } from './lib.mjs';

const K = ['AIzaRstOne00000000000000000000000000001', 'AIzaRstTwo00000000000000000000000000002',
  'AIzaRstThree000000000000000000000000003', 'AIzaRstFour0000000000000000000000000004'];
const MODEL = 'gemini-2.5-flash';
const db = join(mkdtempSync(join(tmpdir(), 'skiff-restart-')), 'storage.sqlite');
let sim, serve, port;
const stderrs = [];

async function freePort() {
  const s = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  const p = s.address().port;
  await new Promise((r) => s.close(r));
  return p;
}

// The same config, the same storage.sqlite and the same address every time: a restart.
async function startSkiff() {
  serve = await startServe(`
upstreams:
  gemini:
    base_url: ${sim.url}
    keys: [${K.join(', ')}]
retry: {max_attempts: 4, base_delay_ms: 10, max_delay_ms: 40, deadline_ms: 8000}
storage: {sqlite: ${db}}
workers: 1
`, { env: { SKIFF_LISTEN: `127.0.0.1:${port}` } });
  assert.equal(serve.url, `http://127.0.0.1:${port}`);
}
async function restart() {
  await serve.stop(); // SIGTERM: a clean exit, asserted
  stderrs.push(serve.stderr);
  await startSkiff();
}

before(async () => {
  sim = await startSim(['--rpm', 'unlimited', '--tpm', 'unlimited', '--rpd', 'unlimited']);
  port = await freePort();
  await startSkiff();
});
after(async () => {
  await serve?.stop();
  await sim?.stop();
  stderrs.push(serve?.stderr ?? '');
  for (const k of K) assert.ok(!stderrs.join('').includes(k), 'a key appeared in the logs');
});
beforeEach(async () => { await sim.reset(); });

const ai = () => new GoogleGenAI({ apiKey: 'client-token-unused', httpOptions: { baseUrl: serve.url } });

test('a resumable upload interrupted by a restart of skiff between its chunks completes, on one key', async () => {
  const data = Buffer.alloc(300 * 1024, 'q');
  const start = await fetch(`${serve.url}/upload/v1beta/files`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-goog-upload-protocol': 'resumable',
      'x-goog-upload-command': 'start',
      'x-goog-upload-header-content-length': String(data.length),
      'x-goog-upload-header-content-type': 'text/plain',
    },
    body: JSON.stringify({ file: { displayName: 'across-a-restart' } }),
  });
  assert.equal(start.status, 200, await start.text());
  const url = start.headers.get('x-goog-upload-url');
  assert.ok(url, 'no X-Goog-Upload-URL');
  assert.ok(url.startsWith(`${serve.url}/upload/v1beta/files?upload_id=`), `the upload URL points elsewhere: ${url}`);
  assert.ok(!url.includes(sim.url), 'the client saw the upstream\'s URL');

  await restart();

  const fin = await fetch(url, {
    method: 'POST',
    headers: { 'x-goog-upload-command': 'upload, finalize', 'x-goog-upload-offset': '0', 'content-type': 'text/plain' },
    body: data,
  });
  const text = await fin.text();
  assert.equal(fin.status, 200, text);
  assert.equal(fin.headers.get('x-goog-upload-status'), 'final');
  const { file } = JSON.parse(text);
  assert.match(file.name, /^files\/[a-z0-9]+$/);
  assert.equal(Number(file.sizeBytes), data.length);
  assert.equal(file.displayName, 'across-a-restart');

  const ups = (await sim.log()).filter((e) => e.method === 'files.upload');
  assert.equal(ups.length, 2, 'the start and the final chunk reached the upstream');
  assert.equal(new Set(ups.map((e) => e.key)).size, 1, `the upload's calls used keys ${ups.map((e) => e.key)}`);
  assert.deepEqual(ups.map((e) => e.status), [200, 200]);
});

test('files uploaded before a restart are still pinned to their owners after it', async () => {
  const files = [];
  for (const name of ['north', 'south', 'east', 'west']) {
    files.push(await ai().files.upload({ file: new Blob([Buffer.alloc(2048, name)], { type: 'text/plain' }), config: { displayName: name } }));
  }
  const owners = (await sim.log()).filter((e) => e.method === 'files.upload' && e.status === 200)
    .map((e) => e.key).filter((_, i) => i % 2 === 0); // start, chunk; start, chunk; ...
  assert.equal(owners.length, files.length);
  assert.ok(new Set(owners).size >= 2, `every upload went to one key (${owners}): the test could not tell pinning from luck`);

  await restart();
  // The sim keeps its files; the log is read from here on (a reset would drop the files).
  let seen = (await sim.log()).length;
  const since = async () => { const l = await sim.log(); const r = l.slice(seen); seen = l.length; return r; };

  for (const [i, f] of files.entries()) {
    const r = await ai().models.generateContent({
      model: MODEL,
      contents: [{ role: 'user', parts: [{ text: 'Summarise it' }, createPartFromUri(f.uri, f.mimeType)] }],
    });
    assert.ok(r.text.length > 0);
    const gens = (await since()).filter((e) => e.method === 'generateContent');
    assert.deepEqual(gens.map((e) => e.key), [owners[i]], `${f.name} (owned by ${owners[i]}) went to another key`);
  }
  // files.get after the restart goes to the owner too.
  const got = await ai().files.get({ name: files[1].name });
  assert.equal(got.name, files[1].name);
  assert.deepEqual((await since()).filter((e) => e.method === 'files.get').map((e) => e.key), [owners[1]]);
});
