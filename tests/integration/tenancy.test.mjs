// Tenancy (issue 16): with client tokens configured, a stored resource is the token's that
// created it. Another token's files.get/delete is Google's 404 and costs no upstream call, a
// generation naming it is Google's 403 for a file that does not exist, and files.list shows
// only the caller's files, walked across every key they live on with skiff's page tokens.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { GoogleGenAI, createPartFromUri } from '@google/genai';
import { startPool } from './lib.mjs';

const K = ['AIzaTenOne00000000000000000000000000001', 'AIzaTenTwo00000000000000000000000000002'];
const TA = 'sk-tenant-alice-000000000000000001';
const TB = 'sk-tenant-bob-00000000000000000002';
const MODEL = 'gemini-2.5-flash';
let sim, serve, stop;

before(async () => {
  ({ sim, serve, stop } = await startPool(K, { tokens: [TA, TB] }));
});
after(async () => { await stop?.(); });
beforeEach(async () => { await sim.reset(); });

const ai = (t) => new GoogleGenAI({ apiKey: t, httpOptions: { baseUrl: serve.url } });
const upload = (t, name) => ai(t).files.upload({
  file: new Blob([Buffer.alloc(2048, name[0])], { type: 'text/plain' }), config: { displayName: name } });

async function listAll(t, pageSize) {
  const pager = await ai(t).files.list({ config: { pageSize } });
  const names = pager.page.map((f) => f.name);
  let pages = 1;
  while (pager.hasNextPage()) {
    names.push(...(await pager.nextPage()).map((f) => f.name));
    pages++;
  }
  return { names, pages };
}

test("token B sees none of token A's files, and A's list merges them across both keys, page by page", async () => {
  const mineA = [];
  for (const n of ['alpha', 'bravo', 'charlie']) mineA.push((await upload(TA, n)).name);
  const theirB = (await upload(TB, 'delta')).name;
  const owners = new Set((await sim.log()).filter((e) => e.method === 'files.upload').map((e) => e.key));
  assert.equal(owners.size, 2, `the uploads used keys ${[...owners]}: the test needs files on both keys`);

  const b = await listAll(TB, 10);
  assert.deepEqual(b.names, [theirB], "B's list holds B's file only");
  const a = await listAll(TA, 10);
  assert.deepEqual(a.names.sort(), [...mineA].sort(), "A's list holds all of A's files, from both keys");
  const lists = (await sim.log()).filter((e) => e.method === 'files.list');
  assert.deepEqual(new Set(lists.map((e) => e.key)).size, 2, 'each key was listed');

  // One file a page: the walk through both keys' pages with skiff's tokens finds them all once.
  const paged = await listAll(TA, 1);
  assert.deepEqual(paged.names.sort(), [...mineA].sort());
  assert.ok(paged.pages >= 3, `${paged.pages} pages`);
});

test("token B's get, delete and generation naming A's file: not found, and nothing goes upstream", async () => {
  const f = await upload(TA, 'echo');
  const seen = (await sim.log()).length;
  await assert.rejects(ai(TB).files.get({ name: f.name }), (e) => {
    assert.equal(e.status, 404);
    assert.match(e.message, /NOT_FOUND/);
    return true;
  });
  await assert.rejects(ai(TB).files.delete({ name: f.name }), (e) => e.status === 404);
  await assert.rejects(ai(TB).models.generateContent({
    model: MODEL,
    contents: [{ role: 'user', parts: [{ text: 'Read it' }, createPartFromUri(f.uri, f.mimeType)] }],
  }), (e) => {
    assert.equal(e.status, 403);
    assert.match(e.message, /PERMISSION_DENIED/);
    assert.match(e.message, /or it may not exist/);
    return true;
  });
  assert.equal((await sim.log()).length, seen, 'a refused call reached the upstream');
  // A still has it, and may use it.
  assert.equal((await ai(TA).files.get({ name: f.name })).name, f.name);
  const r = await ai(TA).models.generateContent({
    model: MODEL,
    contents: [{ role: 'user', parts: [{ text: 'Read it' }, createPartFromUri(f.uri, f.mimeType)] }],
  });
  assert.ok(r.text.length > 0);
  await ai(TA).files.delete({ name: f.name });
});

test('a pageToken skiff did not issue is a 400 that says so, and goes nowhere', async () => {
  const seen = (await sim.log()).length;
  const r = await fetch(`${serve.url}/v1beta/files?pageToken=abc`, { headers: { 'x-goog-api-key': TA } });
  assert.equal(r.status, 400);
  const j = await r.json();
  assert.equal(j.error.status, 'INVALID_ARGUMENT');
  assert.match(j.error.message, /pageToken is not one skiff issued/);
  assert.equal((await sim.log()).length, seen);
});

test("token B's caches.get, update and generation with A's cache: not found; B's caches.list and batches.list hold none of A's", async () => {
  const c = await ai(TA).caches.create({
    model: MODEL,
    config: { contents: [{ role: 'user', parts: [{ text: 'The harbour at night. '.repeat(400) }] }], ttl: '300s' },
  });
  const job = await ai(TA).batches.create({ model: MODEL, src: [{ contents: [{ role: 'user', parts: [{ text: 'Name a harbour.' }] }] }] });
  const seen = (await sim.log()).length;
  await assert.rejects(ai(TB).caches.get({ name: c.name }), (e) => e.status === 404);
  await assert.rejects(ai(TB).caches.update({ name: c.name, config: { ttl: '600s' } }), (e) => e.status === 404);
  await assert.rejects(ai(TB).batches.get({ name: job.name }), (e) => e.status === 404);
  await assert.rejects(ai(TB).batches.cancel({ name: job.name }), (e) => e.status === 404);
  await assert.rejects(
    ai(TB).models.generateContent({ model: MODEL, contents: 'What is there?', config: { cachedContent: c.name } }),
    (e) => {
      assert.equal(e.status, 403);
      assert.match(e.message, /CachedContent not found \(or permission denied\)/);
      return true;
    });
  assert.equal((await sim.log()).length, seen, 'a refused call reached the upstream');
  const bCaches = [];
  for await (const x of await ai(TB).caches.list()) bCaches.push(x?.name);
  assert.deepEqual(bCaches, []);
  const aCaches = [];
  for await (const x of await ai(TA).caches.list()) aCaches.push(x?.name);
  assert.deepEqual(aCaches, [c.name]);
  const bBatches = [];
  for await (const x of await ai(TB).batches.list()) bBatches.push(x?.name);
  assert.deepEqual(bBatches, []);
  const aBatches = [];
  for await (const x of await ai(TA).batches.list()) aBatches.push(x?.name);
  assert.deepEqual(aBatches, [job.name]);
  assert.equal((await ai(TA).caches.get({ name: c.name })).name, c.name);
  await ai(TA).caches.delete({ name: c.name });
});

test('a skiff page token naming a key the pool does not have is a 400 too', async () => {
  const r = await fetch(`${serve.url}/v1beta/files?pageToken=skf1.7.`, { headers: { 'x-goog-api-key': TB } });
  assert.equal(r.status, 400);
  assert.match((await r.json()).error.message, /pageToken is not one skiff issued/);
});

test("a generation naming B's file and A's file on another key: B gets the 403 for A's, never a message naming A's key", async () => {
  const a = await upload(TA, 'foxtrot');
  const aKey = (await sim.log()).find((e) => e.method === 'files.upload').key;
  let b, bKey;
  for (let i = 0; i < 4 && bKey === undefined; i++) {
    const before = (await sim.log()).length; // no sim.reset: it would start its file ids anew
    b = await upload(TB, 'golf');
    const k = (await sim.log()).slice(before).find((e) => e.method === 'files.upload').key;
    if (k !== aKey) bKey = k;
  }
  assert.notEqual(b.name, a.name);
  assert.ok(bKey !== undefined, "B's uploads all went to the key of A's file");
  const seen = (await sim.log()).length;
  const r = await fetch(`${serve.url}/v1beta/models/${MODEL}:generateContent`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-goog-api-key': TB },
    body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'Compare' },
      { fileData: { fileUri: b.uri, mimeType: 'text/plain' } }, { fileData: { fileUri: a.uri, mimeType: 'text/plain' } }] }] }),
  });
  assert.equal(r.status, 403);
  const j = await r.json();
  assert.equal(j.error.status, 'PERMISSION_DENIED');
  assert.match(j.error.message, new RegExp(`File ${a.name.slice(6)} or it may not exist`));
  assert.doesNotMatch(j.error.message, /key/);
  assert.equal((await sim.log()).length, seen);
});
