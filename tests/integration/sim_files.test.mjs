// skiff sim's Files API (issue 16): both upload protocols as @google/genai speaks them,
// files.get/list/delete, and ownership: a file belongs to the project of the key that
// uploaded it (a project is a key), so another key, and a generation referencing it from
// another key, get Google's 403 PERMISSION_DENIED; so do a missing and an expired file.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { GoogleGenAI, ApiError, createPartFromUri } from '@google/genai';
import { startSim } from './lib.mjs';

const KEY_A = 'AIzaSyFilesProjectA00000000000000000001';
const KEY_B = 'AIzaSyFilesProjectB00000000000000000002';
const MODEL = 'gemini-2.5-flash';

let sim;
before(async () => {
  sim = await startSim(['--seed', '3', '--keys', 'AIza*', '--rpm', 'unlimited', '--tpm', 'unlimited',
    '--rpd', 'unlimited']);
});
after(async () => { await sim?.stop(); });

const sdk = (apiKey) => new GoogleGenAI({ apiKey, httpOptions: { baseUrl: sim.url } });
const sha256b64 = (buf) => createHash('sha256').update(buf).digest('base64');
const bytes = (n, seed = 1) => {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
};
const denied = (id) => ({
  error: {
    code: 403,
    message: `You do not have permission to access the File ${id} or it may not exist.`,
    status: 'PERMISSION_DENIED',
  },
});

async function raw(path, { method = 'POST', key = KEY_A, headers = {}, body } = {}) {
  const h = { ...headers };
  if (key) h['x-goog-api-key'] = key;
  const r = await fetch(path.startsWith('http') ? path : `${sim.url}${path}`, { method, headers: h, body });
  const text = await r.text();
  return { r, text, json: text ? JSON.parse(text) : null };
}

async function startUpload({ key = KEY_A, size, type = 'text/plain', displayName = 'notes' } = {}) {
  const { r, text } = await raw('/upload/v1beta/files', {
    key,
    headers: {
      'content-type': 'application/json',
      'x-goog-upload-protocol': 'resumable',
      'x-goog-upload-command': 'start',
      'x-goog-upload-header-content-length': String(size),
      'x-goog-upload-header-content-type': type,
    },
    body: JSON.stringify({ file: { displayName } }),
  });
  assert.equal(r.status, 200, text);
  assert.equal(r.headers.get('x-goog-upload-status'), 'active');
  return r.headers.get('x-goog-upload-url');
}

const chunk = (url, command, offset, body) => raw(url, {
  key: null,
  headers: { 'x-goog-upload-command': command, 'x-goog-upload-offset': String(offset) },
  body,
});

async function uploadWith(ai, n, name, seed = 1) {
  const data = bytes(n, seed);
  const f = await ai.files.upload({ file: new Blob([data], { type: 'text/plain' }), config: { displayName: name } });
  return { f, data };
}

test('files.upload of a 5 MB Blob through the SDK: the File resource as the API has it', async () => {
  await sim.reset();
  const ai = sdk(KEY_A);
  const { f, data } = await uploadWith(ai, 5 * 1024 * 1024, 'five megabytes');
  assert.match(f.name, /^files\/[a-z0-9]{12}$/);
  const id = f.name.slice(6);
  assert.equal(f.displayName, 'five megabytes');
  assert.equal(f.mimeType, 'text/plain');
  assert.equal(f.sizeBytes, String(5 * 1024 * 1024));
  assert.equal(f.sha256Hash, sha256b64(data));
  assert.equal(f.uri, `${sim.url}/v1beta/files/${id}`);
  assert.equal(f.state, 'ACTIVE');
  assert.equal(f.createTime, f.updateTime);
  assert.match(f.createTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  assert.equal(Date.parse(f.expirationTime) - Date.parse(f.createTime), 48 * 3600 * 1000);
  assert.ok(Math.abs(Date.parse(f.createTime) - Date.now()) < 60000);

  // The SDK sent a start and one final chunk ("upload, finalize"), both logged as files.upload.
  const log = await sim.log();
  assert.deepEqual(log.map((e) => [e.http_method, e.path, e.method, e.status]), [
    ['POST', '/upload/v1beta/files', 'files.upload', 200],
    ['POST', '/upload/v1beta/files', 'files.upload', 200],
  ]);
  assert.equal(log[1].body_bytes, 5 * 1024 * 1024);
  assert.equal(log[0].key, KEY_A);

  // files.get answers the same resource.
  const g = await ai.files.get({ name: f.name });
  assert.deepEqual({ ...g, sdkHttpResponse: undefined }, { ...f, sdkHttpResponse: undefined });
});

test('a resumable upload in three chunks: query, a wrong offset, an overrun, finalize', async () => {
  await sim.reset();
  const data = bytes(3000, 7);
  const url = await startUpload({ size: 3000, type: 'application/pdf', displayName: 'three' });
  const u = new URL(url);
  assert.equal(`${u.protocol}//${u.host}`, sim.url, 'an absolute URL on the sim');
  assert.equal(u.pathname, '/upload/v1beta/files');
  assert.match(u.searchParams.get('upload_id'), /^[a-z0-9]{32}$/);

  let r = await chunk(url, 'upload', 0, data.subarray(0, 1000));
  assert.equal(r.r.status, 200);
  assert.equal(r.r.headers.get('x-goog-upload-status'), 'active');
  assert.equal(r.r.headers.get('x-goog-upload-size-received'), '1000');
  assert.equal(r.text, '');

  r = await chunk(url, 'query', 0);
  assert.equal(r.r.status, 200);
  assert.equal(r.r.headers.get('x-goog-upload-size-received'), '1000');

  // A chunk at the wrong offset is refused and says where to resume.
  r = await chunk(url, 'upload', 500, data.subarray(500, 1000));
  assert.equal(r.r.status, 400);
  assert.equal(r.json.error.status, 'INVALID_ARGUMENT');
  assert.match(r.json.error.message, /X-Goog-Upload-Offset is 500 but 1000 bytes were received/);
  assert.equal(r.r.headers.get('x-goog-upload-size-received'), '1000');

  // More bytes than announced is refused and changes nothing.
  r = await chunk(url, 'upload, finalize', 1000, bytes(2500));
  assert.equal(r.r.status, 400);
  assert.match(r.json.error.message, /more than the 3000 announced/);

  r = await chunk(url, 'upload', 1000, data.subarray(1000, 2000));
  assert.equal(r.r.headers.get('x-goog-upload-size-received'), '2000');
  r = await chunk(url, 'upload, finalize', 2000, data.subarray(2000));
  assert.equal(r.r.status, 200, r.text);
  assert.equal(r.r.headers.get('x-goog-upload-status'), 'final');
  const f = r.json.file;
  assert.equal(f.sizeBytes, '3000');
  assert.equal(f.mimeType, 'application/pdf');
  assert.equal(f.displayName, 'three');
  assert.equal(f.sha256Hash, sha256b64(data));

  // The session is gone once finalized.
  r = await chunk(url, 'upload', 3000, 'x');
  assert.equal(r.r.status, 404);
  assert.equal(r.json.error.status, 'NOT_FOUND');
});

test('finalizing short of the announced size is refused; cancel ends a session', async () => {
  const url = await startUpload({ size: 10 });
  let r = await chunk(url, 'upload, finalize', 0, 'short');
  assert.equal(r.r.status, 400);
  assert.match(r.json.error.message, /Finalized after 5 bytes, but 10 were announced/);
  r = await chunk(url, 'cancel', 0);
  assert.equal(r.r.headers.get('x-goog-upload-status'), 'cancelled');
  r = await chunk(url, 'query', 0);
  assert.equal(r.r.status, 404);
});

test('an upload without a protocol, or a resumable one that does not start, is a 400', async () => {
  let r = await raw('/upload/v1beta/files', { body: 'abc' });
  assert.equal(r.r.status, 400);
  assert.match(r.json.error.message, /X-Goog-Upload-Protocol must be "resumable" or "multipart"/);
  r = await raw('/upload/v1beta/files', {
    headers: { 'x-goog-upload-protocol': 'resumable', 'x-goog-upload-command': 'upload' }, body: 'abc',
  });
  assert.equal(r.r.status, 400);
  assert.match(r.json.error.message, /begins with X-Goog-Upload-Command: start/);
  // An upload start needs a key like any other call.
  r = await raw('/upload/v1beta/files', {
    key: null, headers: { 'x-goog-upload-protocol': 'resumable', 'x-goog-upload-command': 'start' },
  });
  assert.equal(r.r.status, 403);
  assert.match(r.json.error.message, /unregistered callers/);
});

test('the multipart protocol: metadata and bytes in one request, a chosen name', async () => {
  const data = bytes(777, 9);
  const b = 'skiffBoundary42';
  const body = Buffer.concat([
    Buffer.from(`--${b}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n`
      + `${JSON.stringify({ file: { name: 'files/my-doc-1', displayName: 'multi' } })}\r\n`
      + `--${b}\r\nContent-Type: image/png\r\n\r\n`),
    data,
    Buffer.from(`\r\n--${b}--\r\n`),
  ]);
  let r = await raw('/upload/v1beta/files', {
    headers: { 'x-goog-upload-protocol': 'multipart', 'content-type': `multipart/related; boundary=${b}` },
    body,
  });
  assert.equal(r.r.status, 200, r.text);
  assert.equal(r.json.file.name, 'files/my-doc-1');
  assert.equal(r.json.file.mimeType, 'image/png');
  assert.equal(r.json.file.sizeBytes, '777');
  assert.equal(r.json.file.sha256Hash, sha256b64(data));
  // The name is taken now.
  r = await raw('/upload/v1beta/files', {
    headers: { 'x-goog-upload-protocol': 'multipart', 'content-type': `multipart/related; boundary=${b}` },
    body,
  });
  assert.equal(r.r.status, 409);
  assert.equal(r.json.error.status, 'ALREADY_EXISTS');
  // A bad chosen name says what a name is.
  r = await raw('/upload/v1beta/files', {
    headers: { 'x-goog-upload-protocol': 'resumable', 'x-goog-upload-command': 'start' },
    body: JSON.stringify({ file: { name: 'files/Bad_Name' } }),
  });
  assert.equal(r.r.status, 400);
  assert.match(r.json.error.message, /1 to 40 lowercase letters, digits or dashes/);
});

test('files.list pages through the project\'s own files, newest first; delete removes one', async () => {
  await sim.reset();
  const a = sdk(KEY_A), b = sdk(KEY_B);
  const mine = [];
  for (let i = 0; i < 3; i++) mine.push((await uploadWith(a, 100 + i, `a${i}`, i)).f.name);
  const theirs = (await uploadWith(b, 50, 'b0')).f.name;

  const pager = await a.files.list({ config: { pageSize: 2 } });
  const names = [];
  for await (const f of pager) names.push(f.name);
  assert.deepEqual(names, [...mine].reverse());

  // The raw pages: two, then one without nextPageToken.
  let r = await raw('/v1beta/files?pageSize=2', { method: 'GET' });
  assert.equal(r.json.files.length, 2);
  assert.ok(r.json.nextPageToken);
  r = await raw(`/v1beta/files?pageSize=2&pageToken=${r.json.nextPageToken}`, { method: 'GET' });
  assert.deepEqual(r.json.files.map((f) => f.name), [mine[0]]);
  assert.equal(r.json.nextPageToken, undefined);

  const bl = [];
  for await (const f of await b.files.list()) bl.push(f.name);
  assert.deepEqual(bl, [theirs]);

  await a.files.delete({ name: mine[1] });
  r = await raw(`/v1beta/${mine[1]}`, { method: 'GET' });
  assert.equal(r.r.status, 403);
  assert.deepEqual(r.json, denied(mine[1].slice(6)));
  const after = [];
  for await (const f of await a.files.list()) after.push(f.name);
  assert.deepEqual(after, [mine[2], mine[0]]);

  // An empty project's list is {} (no "files" field).
  r = await raw('/v1beta/files', { method: 'GET', key: 'AIzaSyFilesProjectEmpty000000000000003' });
  assert.equal(r.r.status, 200);
  assert.deepEqual(r.json, {});
});

test('another project\'s file is 403 PERMISSION_DENIED for get and delete, and stays', async () => {
  await sim.reset();
  const { f } = await uploadWith(sdk(KEY_A), 64, 'owned by A');
  const id = f.name.slice(6);
  for (const method of ['GET', 'DELETE']) {
    const r = await raw(`/v1beta/files/${id}`, { method, key: KEY_B });
    assert.equal(r.r.status, 403, method);
    assert.deepEqual(r.json, denied(id));
  }
  await assert.rejects(sdk(KEY_B).files.get({ name: f.name }),
    (e) => e instanceof ApiError && e.status === 403 && /permission to access the File/.test(e.message));
  // A missing file gets the very same answer.
  const r = await raw('/v1beta/files/nosuchfile', { method: 'GET', key: KEY_A });
  assert.equal(r.r.status, 403);
  assert.deepEqual(r.json, denied('nosuchfile'));
  // A's file is still there for A.
  assert.equal((await sdk(KEY_A).files.get({ name: f.name })).name, f.name);
});

test('a generation referencing two uploaded files answers; every part is checked', async () => {
  await sim.reset();
  const a = sdk(KEY_A);
  const f1 = (await uploadWith(a, 2000, 'one', 1)).f;
  const f2 = (await uploadWith(a, 3000, 'two', 2)).f;
  const fb = (await uploadWith(sdk(KEY_B), 1000, 'B\'s', 3)).f;
  const contents = (files) => [{
    role: 'user',
    parts: [{ text: 'Compare these files' }, ...files.map((f) => createPartFromUri(f.uri, f.mimeType))],
  }];

  const ok = await a.models.generateContent({ model: MODEL, contents: contents([f1, f2]) });
  assert.match(ok.text, /^Simulated answer to "Compare these files"/);

  // B's file in the third part: refused, naming it, though the first two are A's.
  await assert.rejects(a.models.generateContent({ model: MODEL, contents: contents([f1, f2, fb]) }),
    (e) => e instanceof ApiError && e.status === 403
      && e.message.includes(`You do not have permission to access the File ${fb.name.slice(6)} or it may not exist.`));
  // The same for a reference in an earlier turn, in the system instruction, and on a stream.
  const r = await raw(`/v1beta/models/${MODEL}:streamGenerateContent?alt=sse`, {
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      contents: [{ role: 'user', parts: [{ fileData: { fileUri: fb.uri, mimeType: 'text/plain' } }] },
        { role: 'model', parts: [{ text: 'ok' }] }, { role: 'user', parts: [{ text: 'and?' }] }],
    }),
  });
  assert.equal(r.r.status, 403);
  assert.deepEqual(r.json, denied(fb.name.slice(6)));
  const si = await raw(`/v1beta/models/${MODEL}:generateContent`, {
    key: KEY_B,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      systemInstruction: { parts: [{ fileData: { fileUri: f1.name, mimeType: 'text/plain' } }] },
      contents: [{ role: 'user', parts: [{ text: 'hi' }] }],
    }),
  });
  assert.equal(si.r.status, 403);
  assert.deepEqual(si.json, denied(f1.name.slice(6)));

  // B's own file works for B; URIs that are not Files API URIs are not checked.
  const bok = await sdk(KEY_B).models.generateContent({
    model: MODEL,
    contents: [{ role: 'user', parts: [{ text: 'see' }, createPartFromUri(fb.uri, fb.mimeType),
      createPartFromUri('gs://bucket/x.pdf', 'application/pdf')] }],
  });
  assert.match(bok.text, /^Simulated answer to "see"/);
  // A refused generation is not counted as answered.
  const log = await sim.log();
  assert.deepEqual(log.filter((e) => e.method === 'generateContent').map((e) => e.status), [200, 403, 403, 200]);
});

test('an expired file behaves like a missing one, for get, list and generation', async () => {
  await sim.reset();
  const a = sdk(KEY_A);
  const { f } = await uploadWith(a, 10, 'short-lived');
  let r = await fetch(`${sim.url}/_sim/expire`, { method: 'POST', body: JSON.stringify({ name: f.name }) });
  assert.equal(r.status, 200);
  const g = await raw(`/v1beta/${f.name}`, { method: 'GET' });
  assert.equal(g.r.status, 403);
  assert.deepEqual(g.json, denied(f.name.slice(6)));
  const l = await raw('/v1beta/files', { method: 'GET' });
  assert.deepEqual(l.json, {});
  await assert.rejects(a.models.generateContent({
    model: MODEL, contents: [{ role: 'user', parts: [createPartFromUri(f.uri, f.mimeType)] }],
  }), (e) => e instanceof ApiError && e.status === 403);
  r = await fetch(`${sim.url}/_sim/expire`, { method: 'POST', body: JSON.stringify({ name: 'files/none' }) });
  assert.equal(r.status, 404);
});

test('files routes: scripts match their methods first; credentials are checked like any call', async () => {
  await sim.reset();
  await sim.script({ match: { method: 'files.get' }, reply: { status: 503 } });
  let r = await raw('/v1beta/files/abc', { method: 'GET' });
  assert.equal(r.r.status, 503);
  assert.equal(r.json.error.status, 'UNAVAILABLE');
  r = await raw('/v1beta/files/abc', { method: 'GET' });
  assert.equal(r.r.status, 403, 'the script was used once');
  r = await raw('/v1beta/files', { method: 'GET', key: null });
  assert.equal(r.r.status, 403);
  assert.match(r.json.error.message, /unregistered callers/);
  const bearer = await fetch(`${sim.url}/v1beta/files`, { headers: { authorization: 'Bearer x' } });
  assert.equal(bearer.status, 401);
  // Methods the API does not have on these paths are the simulator's usual 404.
  r = await raw('/v1beta/files/abc', { method: 'PUT' });
  assert.equal(r.r.status, 404);
  assert.equal(r.json.error.message, 'Method not found.');
  const log = await sim.log();
  assert.deepEqual(log.slice(0, 2).map((e) => [e.method, e.scripted, e.status]),
    [['files.get', true, 503], ['files.get', false, 403]]);
});
