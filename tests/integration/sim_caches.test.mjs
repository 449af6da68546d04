// skiff sim's cachedContents (issue 16): create/get/list/update/delete through @google/genai,
// the use of a cache by a generation (cachedContentTokenCount, counted in the prompt), and
// ownership: another project's (key's) cache is 403 PERMISSION_DENIED, for its metadata and
// for a generation; so are missing and expired ones.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { GoogleGenAI, ApiError, createPartFromUri } from '@google/genai';
import { startSim } from './lib.mjs';

const KEY_A = 'AIzaSyCachesProjectA0000000000000000001';
const KEY_B = 'AIzaSyCachesProjectB0000000000000000002';
const MODEL = 'gemini-2.5-flash';
const BOOK = 'The harbour at night. '.repeat(400); // 8800 bytes: over the 1024-token minimum

let sim;
before(async () => {
  sim = await startSim(['--seed', '5', '--keys', 'AIza*', '--rpm', 'unlimited', '--tpm', 'unlimited',
    '--rpd', 'unlimited']);
});
after(async () => { await sim?.stop(); });

const sdk = (apiKey) => new GoogleGenAI({ apiKey, httpOptions: { baseUrl: sim.url } });
const DENIED = { error: { code: 403, message: 'CachedContent not found (or permission denied)', status: 'PERMISSION_DENIED' } };
const strip = (o) => ({ ...o, sdkHttpResponse: undefined });

async function raw(path, { method = 'POST', key = KEY_A, body } = {}) {
  const h = { 'content-type': 'application/json' };
  if (key) h['x-goog-api-key'] = key;
  const r = await fetch(`${sim.url}${path}`, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  return { r, text, json: text ? JSON.parse(text) : null };
}

const makeCache = (ai, config = {}) => ai.caches.create({
  model: MODEL,
  config: {
    contents: [{ role: 'user', parts: [{ text: BOOK }] }],
    systemInstruction: 'You are a harbour master.',
    displayName: 'harbour',
    ttl: '300s',
    ...config,
  },
});

test('caches.create, get, list, update and delete through the SDK', async () => {
  await sim.reset();
  const ai = sdk(KEY_A);
  const c = await makeCache(ai);
  assert.match(c.name, /^cachedContents\/[a-z0-9]{12}$/);
  assert.equal(c.model, `models/${MODEL}`);
  assert.equal(c.displayName, 'harbour');
  assert.ok(c.usageMetadata.totalTokenCount >= Math.ceil(BOOK.length / 4), JSON.stringify(c.usageMetadata));
  assert.equal(Date.parse(c.expireTime) - Date.parse(c.createTime), 300000);
  assert.equal(c.contents, undefined, 'the API never returns the contents');

  assert.deepEqual(strip(await ai.caches.get({ name: c.name })), strip(c));

  const c2 = await makeCache(ai, { displayName: 'second' });
  const names = [];
  for await (const x of await ai.caches.list({ config: { pageSize: 1 } })) names.push(x.name);
  assert.deepEqual(names, [c2.name, c.name]);

  const u = await ai.caches.update({ name: c.name, config: { ttl: '7200s' } });
  assert.equal(Date.parse(u.expireTime) - Date.parse(u.updateTime), 7200000);
  assert.equal(u.createTime, c.createTime);

  await ai.caches.delete({ name: c2.name });
  const r = await raw(`/v1beta/${c2.name}`, { method: 'GET' });
  assert.equal(r.r.status, 403);
  assert.deepEqual(r.json, DENIED);

  const log = await sim.log();
  assert.deepEqual(log.map((e) => e.method), ['cachedContents.create', 'cachedContents.get',
    'cachedContents.create', 'cachedContents.list', 'cachedContents.list', 'cachedContents.patch',
    'cachedContents.delete', 'cachedContents.get']);
});

test('a generation using a cache reports cachedContentTokenCount, counted in the prompt', async () => {
  await sim.reset();
  const ai = sdk(KEY_A);
  const c = await makeCache(ai);
  const T = c.usageMetadata.totalTokenCount;
  const contents = 'What ships came in?';
  const plain = await ai.models.generateContent({ model: MODEL, contents });
  const cached = await ai.models.generateContent({ model: MODEL, contents, config: { cachedContent: c.name } });
  const pu = plain.usageMetadata, cu = cached.usageMetadata;
  assert.equal(pu.cachedContentTokenCount, undefined);
  assert.equal(cu.cachedContentTokenCount, T);
  assert.equal(cu.promptTokenCount, pu.promptTokenCount + T);
  assert.equal(cu.totalTokenCount, pu.totalTokenCount + T);
  assert.deepEqual(cu.cacheTokensDetails, [{ modality: 'TEXT', tokenCount: T }]);
  assert.equal(cached.text, plain.text);

  // The stream carries it on every event's usage.
  let last;
  for await (const ch of await ai.models.generateContentStream({ model: MODEL, contents, config: { cachedContent: c.name } })) last = ch;
  assert.equal(last.usageMetadata.cachedContentTokenCount, T);
  assert.equal(last.usageMetadata.promptTokenCount, pu.promptTokenCount + T);
});

test('another project\'s cache is 403 for get, patch, delete and generation; it stays', async () => {
  await sim.reset();
  const c = await makeCache(sdk(KEY_A));
  for (const [method, body] of [['GET'], ['PATCH', { ttl: '10s' }], ['DELETE']]) {
    const r = await raw(`/v1beta/${c.name}`, { method, key: KEY_B, body });
    assert.equal(r.r.status, 403, method);
    assert.deepEqual(r.json, DENIED);
  }
  const g = await raw(`/v1beta/models/${MODEL}:generateContent`, {
    key: KEY_B, body: { cachedContent: c.name, contents: [{ role: 'user', parts: [{ text: 'hi' }] }] },
  });
  assert.equal(g.r.status, 403);
  assert.deepEqual(g.json, DENIED);
  await assert.rejects(sdk(KEY_B).models.generateContent({ model: MODEL, contents: 'hi', config: { cachedContent: c.name } }),
    (e) => e instanceof ApiError && e.status === 403);
  // B's list does not show it; A's does; a missing cache is the same 403.
  assert.deepEqual((await raw('/v1beta/cachedContents', { method: 'GET', key: KEY_B })).json, {});
  assert.equal((await raw('/v1beta/cachedContents', { method: 'GET' })).json.cachedContents.length, 1);
  assert.deepEqual((await raw('/v1beta/cachedContents/nosuch', { method: 'GET' })).json, DENIED);
});

test('the API\'s refusals: too small, another model, system instruction beside a cache, expiry', async () => {
  await sim.reset();
  const ai = sdk(KEY_A);
  await assert.rejects(makeCache(ai, { contents: [{ role: 'user', parts: [{ text: 'tiny' }] }], systemInstruction: undefined }),
    (e) => e instanceof ApiError && e.status === 400
      && /^Cached content is too small\. total_token_count=1, min_total_token_count=1024/.test(JSON.parse(e.message).error.message));
  let r = await raw('/v1beta/cachedContents', { body: { model: 'models/no-such-model', contents: [] } });
  assert.equal(r.r.status, 404);
  assert.match(r.json.error.message, /models\/no-such-model is not found for API version v1beta/);
  r = await raw('/v1beta/cachedContents', { body: { model: `models/${MODEL}`, contents: [{ parts: [{ text: BOOK }] }], ttl: '5 minutes' } });
  assert.equal(r.r.status, 400);
  assert.match(r.json.error.message, /like "300s"/);

  const c = await makeCache(ai);
  r = await raw('/v1beta/models/gemini-2.5-pro:generateContent', {
    body: { cachedContent: c.name, contents: [{ role: 'user', parts: [{ text: 'hi' }] }] },
  });
  assert.equal(r.r.status, 400);
  assert.equal(r.json.error.message, `Model used by GenerateContent request (models/gemini-2.5-pro) and CachedContent (models/${MODEL}) has to be the same.`);
  r = await raw(`/v1beta/models/${MODEL}:generateContent`, {
    body: { cachedContent: c.name, systemInstruction: { parts: [{ text: 'x' }] }, contents: [{ role: 'user', parts: [{ text: 'hi' }] }] },
  });
  assert.equal(r.r.status, 400);
  assert.match(r.json.error.message, /^CachedContent can not be used with GenerateContent request setting system_instruction, tools or tool_config/);

  // An update may change only the expiry.
  r = await raw(`/v1beta/${c.name}`, { method: 'PATCH', body: { displayName: 'renamed' } });
  assert.equal(r.r.status, 400);
  assert.match(r.json.error.message, /Only ttl or expireTime/);

  // expireTime in the past, or the test knob: gone, like a missing one.
  const e = await fetch(`${sim.url}/_sim/expire`, { method: 'POST', body: JSON.stringify({ name: c.name }) });
  assert.equal(e.status, 200);
  r = await raw(`/v1beta/models/${MODEL}:generateContent`, {
    body: { cachedContent: c.name, contents: [{ role: 'user', parts: [{ text: 'hi' }] }] },
  });
  assert.equal(r.r.status, 403);
  assert.deepEqual(r.json, DENIED);
  const c3 = await makeCache(ai, { ttl: undefined, expireTime: new Date(Date.now() + 1500).toISOString() });
  assert.equal((await raw(`/v1beta/${c3.name}`, { method: 'GET' })).r.status, 200);
  await new Promise((res) => setTimeout(res, 1600));
  assert.equal((await raw(`/v1beta/${c3.name}`, { method: 'GET' })).r.status, 403);
});

test('a cache\'s contents may reference only the project\'s own files', async () => {
  await sim.reset();
  const fb = await sdk(KEY_B).files.upload({ file: new Blob(['b'.repeat(100)], { type: 'text/plain' }) });
  await assert.rejects(makeCache(sdk(KEY_A), {
    contents: [{ role: 'user', parts: [{ text: BOOK }, createPartFromUri(fb.uri, fb.mimeType)] }],
  }), (e) => e instanceof ApiError && e.status === 403 && e.message.includes(`access the File ${fb.name.slice(6)}`));
  const ok = await makeCache(sdk(KEY_B), {
    contents: [{ role: 'user', parts: [{ text: BOOK }, createPartFromUri(fb.uri, fb.mimeType)] }],
  });
  assert.match(ok.name, /^cachedContents\//);
});
