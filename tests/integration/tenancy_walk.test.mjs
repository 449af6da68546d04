// Tenancy lists walked key by key (issue 16): with client tokens, files.list shows only the
// caller's files, walked across the pool's keys behind skiff's page token. A page is never
// empty while more of the caller's files lie ahead: @google/genai's `for await` reads an
// empty page as an item `undefined`. Four keys: A's files on keys 1-2, B's on key 3.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { GoogleGenAI } from '@google/genai';
import { startPool } from './lib.mjs';

const K = ['AIzaWalkOne0000000000000000000000000001', 'AIzaWalkTwo0000000000000000000000000002',
  'AIzaWalkThree00000000000000000000000003', 'AIzaWalkFour000000000000000000000000004'];
const TA = 'sk-walk-alice-000000000000000000001';
const TB = 'sk-walk-bob-00000000000000000000002';
let sim, serve, stop;
const files = { A: [], B: [] };

const ai = (t) => new GoogleGenAI({ apiKey: t, httpOptions: { baseUrl: serve.url } });
const upload = (t, name) => ai(t).files.upload({
  file: new Blob([Buffer.alloc(1024, name[0])], { type: 'text/plain' }), config: { displayName: name } });

// Uploads one file for token t and returns it with the index of the key it lives on.
async function uploadOn(t, name) {
  const seen = (await sim.log()).length;
  const f = await upload(t, name);
  const e = (await sim.log()).slice(seen).find((x) => x.method === 'files.upload');
  return { f, key: K.indexOf(e.key) };
}

before(async () => {
  ({ sim, serve, stop } = await startPool(K, { tokens: [TA, TB] }));
  // The pool picks the least recently used key: A's two uploads take keys 1 and 2, B's key 3.
  for (const n of ['alpha', 'bravo']) {
    const { f, key } = await uploadOn(TA, n);
    files.A.push({ name: f.name, key });
  }
  const { f, key } = await uploadOn(TB, 'charlie');
  files.B.push({ name: f.name, key });
  assert.deepEqual(files.A.map((x) => x.key).sort(), [0, 1], "A's files are on keys 1 and 2");
  assert.ok(files.B[0].key >= 2, `B's file is on key ${files.B[0].key + 1}, not on key 3 or 4`);
});
after(async () => { await stop?.(); });

async function forAwait(t, config) {
  const out = [];
  for await (const f of await ai(t).files.list(config ? { config } : undefined)) out.push(f);
  return out;
}

test("B's for-await over files.list yields exactly B's file, never undefined, whatever the page size", async () => {
  for (const config of [undefined, { pageSize: 1 }, { pageSize: 10 }]) {
    const got = await forAwait(TB, config);
    assert.deepEqual(got.map((f) => f?.name), files.B.map((x) => x.name), `pageSize ${config?.pageSize}`);
  }
});

test("B's listing skips the keys without B's files within one request, and ends without a token", async () => {
  const seen = (await sim.log()).length;
  const r = await fetch(`${serve.url}/v1beta/files?pageSize=5`, { headers: { 'x-goog-api-key': TB } });
  assert.equal(r.status, 200);
  const j = await r.json();
  assert.deepEqual(j.files.map((f) => f.name), files.B.map((x) => x.name));
  assert.equal(j.nextPageToken, undefined, 'no key after the walk holds more of B\'s files');
  const lists = (await sim.log()).slice(seen).filter((e) => e.method === 'files.list');
  assert.deepEqual(lists.map((e) => K.indexOf(e.key)), [0, 1, 2, 3], 'one request walked every key in order');
});

test("A's listing with pageSize 1 pages across keys 1 and 2: one file a page, no empty page", async () => {
  const pager = await ai(TA).files.list({ config: { pageSize: 1 } });
  const pages = [pager.page.map((f) => f.name)];
  while (pager.hasNextPage()) pages.push((await pager.nextPage()).map((f) => f.name));
  assert.equal(pages.length, 2, `pages: ${JSON.stringify(pages)}`);
  for (const p of pages) assert.equal(p.length, 1, `a page holds at most pageSize files: ${JSON.stringify(pages)}`);
  assert.deepEqual(pages.flat().sort(), files.A.map((x) => x.name).sort());
  const got = await forAwait(TA, { pageSize: 1 });
  assert.deepEqual(got.map((f) => f?.name).sort(), files.A.map((x) => x.name).sort());
});

test('a token with no files at all gets one empty page without a token', async () => {
  // B deletes its only file: no key holds any of B's now.
  await ai(TB).files.delete({ name: files.B[0].name });
  const r = await fetch(`${serve.url}/v1beta/files`, { headers: { 'x-goog-api-key': TB } });
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), {});
  assert.deepEqual(await forAwait(TB), []);
});

test('one page makes at most 16 upstream list calls: past them, an empty page with a token where the walk stopped', async () => {
  // A's 20 more files, spread over the four keys; B has none, and lists one file a page.
  for (let i = 0; i < 20; i++) await upload(TA, `delta${i}`);
  const seen = (await sim.log()).length;
  let r = await fetch(`${serve.url}/v1beta/files?pageSize=1`, { headers: { 'x-goog-api-key': TB } });
  assert.equal(r.status, 200);
  let j = await r.json();
  assert.equal(j.files, undefined);
  assert.match(j.nextPageToken, /^skf1\.\d+\./, 'the walk goes on from where it stopped');
  let calls = (await sim.log()).slice(seen).filter((e) => e.method === 'files.list');
  assert.equal(calls.length, 16);
  // Following the tokens ends the walk, with none of A's files on any page.
  let pages = 1;
  while (j.nextPageToken && pages < 10) {
    r = await fetch(`${serve.url}/v1beta/files?pageSize=1&pageToken=${encodeURIComponent(j.nextPageToken)}`,
      { headers: { 'x-goog-api-key': TB } });
    assert.equal(r.status, 200);
    j = await r.json();
    assert.equal(j.files, undefined);
    pages++;
  }
  assert.equal(j.nextPageToken, undefined);
  calls = (await sim.log()).slice(seen).filter((e) => e.method === 'files.list');
  assert.equal(calls.length, 22, 'every upstream page was asked for once (22 files of A, one a page)');
});
