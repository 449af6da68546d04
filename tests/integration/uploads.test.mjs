// Uploads stream through skiff (issue 16: "chunks stream through without being buffered whole,
// uploads reach 2 GB"): a resumable chunk's bytes go to the upstream as they are read, with
// backpressure, bounded by limits.max_upload_bytes instead of limits.max_body_bytes, and the
// simulator hashes them as they come. What a user sees: a file of any size up to the limit
// uploads, its size and SHA-256 are the upstream's, skiff's memory stays small, a stalled
// uploader holds up nobody, an upload over the limit is a 413 that names it, and an upload
// cut off keeps what arrived (the resumable protocol then goes on from there).
//
// Size: one 2 GiB `upload, finalize` over plain HTTP/1.1 to the upstream; over the TLS runs
// (SKIFF_TEST_UPSTREAM=tls: HTTP/2 through the test's node bridge, which carries every byte
// twice more) 256 MiB, to stay within make test's time (these runs use the ASan build).
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { GoogleGenAI } from '@google/genai';
import { startSim, startServe, sleep, waitFor, TLS_UPSTREAM } from './lib.mjs';

const K = ['AIzaUpOne000000000000000000000000000001', 'AIzaUpTwo000000000000000000000000000002'];
const BIG = TLS_UPSTREAM ? 256 * 1024 * 1024 : 2 * 1024 * 1024 * 1024;
const MAX_RSS = 100 * 1024 * 1024; // skiff's peak resident memory (VmHWM) after the upload
// Under ASan (make test's build) freed memory waits in ASan's quarantine (256 MB by default)
// before it is reused: that is ASan's memory, not skiff's, so it is kept small here. A
// release build ignores the variable.
const ASAN_QUARANTINE = `${process.env.ASAN_OPTIONS ? process.env.ASAN_OPTIONS + ':' : ''}quarantine_size_mb=4`;
let sim, serve;

before(async () => {
  sim = await startSim(['--rpm', 'unlimited', '--tpm', 'unlimited', '--rpd', 'unlimited']);
  serve = await startServe(`
upstreams:
  gemini:
    base_url: ${sim.url}
    keys: [${K.join(', ')}]
retry: {max_attempts: 3, base_delay_ms: 10, max_delay_ms: 40}
limits: {max_body_bytes: 1048576, max_upload_bytes: 3221225472, idle_timeout_ms: 5000, body_timeout_ms: 2000}
storage: {sqlite: ""}
workers: 1
`, { env: { ASAN_OPTIONS: ASAN_QUARANTINE } });
});
after(async () => {
  await serve?.stop();
  await sim?.stop();
  for (const k of K) assert.ok(!serve.stderr.includes(k), 'a key appeared in the logs');
});
beforeEach(async () => { await sim.reset(); });

const vmHWM = (pid) => Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmHWM:\s+(\d+) kB/)[1]) * 1024;

// Bytes that do not repeat in a way a hash could miss: a random 1 MiB block, each copy with
// its index in its first 8 bytes.
const BLOCK = randomBytes(1024 * 1024);
function* blocks(size) {
  for (let i = 0, left = size; left > 0; i++) {
    const b = Buffer.from(BLOCK);
    b.writeBigUInt64LE(BigInt(i));
    yield left >= b.length ? b : b.subarray(0, left);
    left -= b.length;
  }
}
const sha256 = (size) => {
  const h = createHash('sha256');
  for (const b of blocks(size)) h.update(b);
  return h.digest('base64');
};

// The resumable protocol's start through skiff: the session URL skiff hands out.
async function start(size, name) {
  const r = await fetch(`${serve.url}/upload/v1beta/files`, {
    method: 'POST',
    headers: {
      'x-goog-upload-protocol': 'resumable', 'x-goog-upload-command': 'start',
      'x-goog-upload-header-content-length': String(size),
      'x-goog-upload-header-content-type': 'application/octet-stream', 'content-type': 'application/json',
    },
    body: JSON.stringify({ file: { display_name: name } }),
  });
  assert.equal(r.status, 200, await r.text());
  const url = r.headers.get('x-goog-upload-url');
  assert.ok(url.startsWith(serve.url), `the session URL points at skiff: ${url}`);
  return url;
}

// One chunk at offset, its body streamed from blocks (never whole in node either).
function chunk(url, { offset = 0, size, command = 'upload, finalize', from = 0, chunked = false }) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const headers = { 'x-goog-upload-command': command, 'x-goog-upload-offset': String(offset) };
    if (!chunked) headers['content-length'] = String(size);
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: 'POST', headers }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('error', reject);
    const it = blocks(from + size);
    let skip = from;
    const pump = () => {
      for (;;) {
        let { value, done } = it.next();
        if (done) { req.end(); return; }
        if (skip >= value.length) { skip -= value.length; continue; }
        if (skip) { value = value.subarray(skip); skip = 0; }
        if (!req.write(value)) { req.once('drain', pump); return; }
      }
    };
    pump();
  });
}

test(`a ${BIG / 1048576} MiB file in one "upload, finalize" request streams through skiff: the upstream has every byte, skiff's memory stays under 100 MB, limits.body_timeout_ms (2 s) does not cut it`, { timeout: 280000 }, async () => {
  const url = await start(BIG, 'big');
  const want = sha256(BIG);
  const t0 = Date.now();
  const r = await chunk(url, { size: BIG });
  const secs = (Date.now() - t0) / 1000;
  assert.equal(r.status, 200, r.body);
  const f = JSON.parse(r.body).file;
  assert.equal(Number(f.sizeBytes), BIG, 'the size the upstream received');
  assert.equal(f.sha256Hash, want, 'the SHA-256 of what the upstream received');
  const ups = (await sim.log()).filter((e) => e.method === 'files.upload');
  assert.equal(ups.length, 2, 'a start and the one chunk');
  assert.equal(ups[1].body_bytes, BIG, 'the sim logged the whole chunk');
  assert.equal(ups[0].key, ups[1].key, 'the chunk went out on the key that started the upload');
  const rss = vmHWM(serve.proc.pid);
  console.log(`# ${BIG} bytes in ${secs.toFixed(1)} s (${(BIG / 1048576 / secs).toFixed(0)} MiB/s), skiff VmHWM ${(rss / 1048576).toFixed(1)} MiB`);
  assert.ok(rss < MAX_RSS, `skiff's peak RSS is ${rss} bytes`);
  // The finalize's answer taught skiff the file's owner: a get goes to that key.
  const g = await fetch(`${serve.url}/v1beta/${f.name}`);
  assert.equal(g.status, 200);
  assert.equal((await sim.log()).filter((e) => e.method === 'files.get')[0].key, ups[0].key);
});

test('@google/genai files.upload of a file eight times limits.max_body_bytes goes through (8 MiB chunks)', async () => {
  const size = 20 * 1024 * 1024 + 12345;
  const data = Buffer.concat([...blocks(size)]);
  const ai = new GoogleGenAI({ apiKey: 'client-token-unused', httpOptions: { baseUrl: serve.url } });
  const f = await ai.files.upload({ file: new Blob([data], { type: 'application/octet-stream' }), config: { displayName: 'sdk' } });
  assert.equal(Number(f.sizeBytes), size);
  assert.equal(f.sha256Hash, createHash('sha256').update(data).digest('base64'));
  const ups = (await sim.log()).filter((e) => e.method === 'files.upload');
  assert.ok(ups.length >= 4, `a start and three chunks at least (${ups.length})`);
  assert.equal(new Set(ups.map((e) => e.key)).size, 1, 'every chunk on the key that started it');
});

test('a multipart upload (metadata and bytes in one body) of three times limits.max_body_bytes streams through', async () => {
  const size = 3 * 1024 * 1024 + 5;
  const data = Buffer.concat([...blocks(size)]);
  const B = 'skiffboundary42';
  const body = Buffer.concat([
    Buffer.from(`--${B}\r\ncontent-type: application/json\r\n\r\n{"file":{"displayName":"multi"}}\r\n--${B}\r\ncontent-type: application/octet-stream\r\n\r\n`),
    data, Buffer.from(`\r\n--${B}--\r\n`)]);
  const r = await fetch(`${serve.url}/upload/v1beta/files`, {
    method: 'POST', headers: { 'x-goog-upload-protocol': 'multipart', 'content-type': `multipart/related; boundary=${B}` }, body,
  });
  const text = await r.text();
  assert.equal(r.status, 200, text);
  const f = JSON.parse(text).file;
  assert.equal(Number(f.sizeBytes), size);
  assert.equal(f.sha256Hash, createHash('sha256').update(data).digest('base64'));
  // Its owner is recorded from the answer: a get goes to the key that made it.
  const owner = (await sim.log()).find((e) => e.method === 'files.upload').key;
  assert.equal((await fetch(`${serve.url}/v1beta/${f.name}`)).status, 200);
  assert.equal((await sim.log()).filter((e) => e.method === 'files.get')[0].key, owner);
});

test('a chunked "upload, finalize" (no Content-Length) streams through too', async () => {
  const size = 5 * 1024 * 1024 + 7;
  const url = await start(size, 'chunked');
  const r = await chunk(url, { size, chunked: true });
  assert.equal(r.status, 200, r.body);
  const f = JSON.parse(r.body).file;
  assert.equal(Number(f.sizeBytes), size);
  assert.equal(f.sha256Hash, sha256(size));
});

test('a body over limits.max_upload_bytes is a 413 that names the limit, before any of it goes upstream', async () => {
  const url = await start(1024, 'huge');
  const seen = (await sim.log()).length;
  const u = new URL(url);
  // Announced: refused at the head.
  const r = await new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: 'POST',
      headers: { 'x-goog-upload-command': 'upload, finalize', 'x-goog-upload-offset': '0', 'content-length': String(4 * 1024 * 1024 * 1024) } },
    (res) => { let b = ''; res.on('data', (d) => { b += d; }); res.on('end', () => resolve({ status: res.statusCode, body: b })); });
    req.on('error', reject);
    req.write(BLOCK);
  });
  assert.equal(r.status, 413);
  assert.match(JSON.parse(r.body).error.message, /limits\.max_upload_bytes \(3221225472 bytes\)/);
  assert.equal((await sim.log()).length, seen, 'nothing went upstream');
});

test('a chunked body that grows past limits.max_upload_bytes is cut with a 413 naming it, and the upstream call ends', async () => {
  const small = await startServe(`
upstreams:
  gemini:
    base_url: ${sim.url}
    keys: [${K[0]}]
limits: {max_upload_bytes: 2097152}
storage: {sqlite: ""}
`);
  try {
    const r0 = await fetch(`${small.url}/upload/v1beta/files`, {
      method: 'POST',
      headers: { 'x-goog-upload-protocol': 'resumable', 'x-goog-upload-command': 'start', 'content-type': 'application/json' },
      body: '{}',
    });
    const url = r0.headers.get('x-goog-upload-url');
    const r = await chunk(url, { size: 3 * 1024 * 1024, chunked: true }).catch((e) => ({ status: 0, body: String(e) }));
    assert.equal(r.status, 413, r.body);
    assert.match(JSON.parse(r.body).error.message, /limits\.max_upload_bytes \(2097152 bytes\)/);
    // The upstream call ended there: the session kept what had arrived, no more than the limit.
    const got = await waitFor('the upstream call to end', async () => {
      const q = await fetch(url, { method: 'POST', headers: { 'x-goog-upload-command': 'query' } });
      return Number(q.headers.get('x-goog-upload-size-received'));
    }, 5000);
    assert.ok(got <= 2097152, `the upstream has ${got} bytes`);
  } finally {
    await small.stop();
  }
});

test('a chunk the upstream fails after its bytes went is not sent again: the client gets the failure and resumes from what the upstream has', async () => {
  const size = 3 * 1024 * 1024;
  const url = await start(size, 'once');
  await sim.script({ match: { method: 'files.upload' }, reply: { status: 503 }, times: 1 });
  const r = await chunk(url, { size });
  assert.equal(r.status, 503, r.body);
  const ups = (await sim.log()).filter((e) => e.method === 'files.upload');
  assert.equal(ups.length, 2, 'the start and one attempt of the chunk: no retry without its bytes');
  assert.equal(ups[1].body_bytes, size);
  const q = await fetch(url, { method: 'POST', headers: { 'x-goog-upload-command': 'query' } });
  const got = Number(q.headers.get('x-goog-upload-size-received'));
  const rest = await chunk(url, { offset: got, from: got, size: size - got });
  assert.equal(rest.status, 200, rest.body);
  assert.equal(JSON.parse(rest.body).file.sha256Hash, sha256(size));
});

test('a streamed chunk that stalls gets a 408 after limits.idle_timeout_ms between reads, and its upstream call ends', async () => {
  const idle = await startServe(`
upstreams:
  gemini:
    base_url: ${sim.url}
    keys: [${K[0]}]
limits: {idle_timeout_ms: 400}
storage: {sqlite: ""}
`);
  try {
    const r0 = await fetch(`${idle.url}/upload/v1beta/files`, {
      method: 'POST',
      headers: { 'x-goog-upload-protocol': 'resumable', 'x-goog-upload-command': 'start', 'content-type': 'application/json' },
      body: '{}',
    });
    const url = new URL(r0.headers.get('x-goog-upload-url'));
    const sock = net.connect(Number(url.port), url.hostname);
    let answer = '';
    sock.on('data', (d) => { answer += d; });
    sock.on('error', () => {});
    await new Promise((r) => sock.once('connect', r));
    sock.write(`POST ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nx-goog-upload-command: upload, finalize\r\n` +
      `x-goog-upload-offset: 0\r\ncontent-length: 1000000\r\n\r\n`);
    sock.write(BLOCK.subarray(0, 300000));
    await waitFor('the 408', () => answer.includes('\r\n\r\n'), 4000);
    assert.match(answer, /^HTTP\/1\.1 408 /);
    assert.match(answer, /limits\.idle_timeout_ms/);
    const got = await waitFor('the upstream call to end', async () => {
      const q = await fetch(url, { method: 'POST', headers: { 'x-goog-upload-command': 'query' } });
      return Number(q.headers.get('x-goog-upload-size-received'));
    }, 5000);
    assert.equal(got, 300000, 'the upstream kept what arrived before the stall');
    sock.destroy();
  } finally {
    await idle.stop();
  }
});

// A TCP hop between skiff and the sim that can refuse connections for a while.
async function hop(port) {
  const socks = new Set();
  const mk = () => net.createServer((c) => {
    const b = net.connect(port, '127.0.0.1');
    socks.add(c); socks.add(b);
    c.pipe(b); b.pipe(c);
    const end = () => { c.destroy(); b.destroy(); socks.delete(c); socks.delete(b); };
    c.on('error', end); b.on('error', end); c.on('close', end); b.on('close', end);
  });
  let server = mk();
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const p = server.address().port;
  return {
    port: p,
    refuse: async () => { for (const x of socks) x.destroy(); await new Promise((r) => server.close(r)); },
    accept: async () => { server = mk(); server.listen(p, '127.0.0.1'); await new Promise((r) => server.once('listening', r)); },
    close: () => { for (const x of socks) x.destroy(); server.close(); },
  };
}

test('a chunk whose upstream cannot be reached at first is sent once it can: nothing of it had gone, and it stays on the key that owns the upload', { skip: TLS_UPSTREAM ? 'the TLS runs put their bridge in front of the hop' : false }, async () => {
  const h = await hop(Number(new URL(sim.url).port));
  const s2 = await startServe(`
upstreams:
  gemini:
    base_url: http://127.0.0.1:${h.port}
    keys: [${K.join(', ')}]
retry: {max_attempts: 6, base_delay_ms: 100, max_delay_ms: 200}
storage: {sqlite: ""}
`);
  try {
    const size = 3 * 1024 * 1024;
    const r0 = await fetch(`${s2.url}/upload/v1beta/files`, {
      method: 'POST',
      headers: { 'x-goog-upload-protocol': 'resumable', 'x-goog-upload-command': 'start', 'content-type': 'application/json',
        'x-goog-upload-header-content-length': String(size) },
      body: '{}',
    });
    const url = r0.headers.get('x-goog-upload-url');
    await h.refuse();
    setTimeout(() => h.accept(), 250);
    const r = await chunk(url, { size });
    assert.equal(r.status, 200, r.body);
    assert.ok(Number(r.headers['x-skiff-attempts']) >= 2, `attempts: ${r.headers['x-skiff-attempts']}`);
    assert.equal(JSON.parse(r.body).file.sha256Hash, sha256(size));
    const ups = (await sim.log()).filter((e) => e.method === 'files.upload');
    assert.equal(ups.length, 2, 'the start and the chunk, once');
    assert.equal(ups[1].key, ups[0].key, 'the chunk went out on the key that started the upload');
  } finally {
    await s2.stop();
    h.close();
  }
});

test('a client that stalls mid-upload holds up no other request; when it goes away its upstream call ends and the upload resumes from what arrived', async () => {
  const size = 16 * 1024 * 1024;
  const url = await start(size, 'stalled');
  const u = new URL(url);
  // Half the bytes, then nothing.
  const sock = net.connect(Number(u.port), u.hostname);
  await new Promise((r) => sock.once('connect', r));
  sock.write(`POST ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nx-goog-upload-command: upload, finalize\r\n` +
    `x-goog-upload-offset: 0\r\ncontent-length: ${size}\r\n\r\n`);
  const half = size / 2;
  for (const b of blocks(half)) sock.write(b);
  await sleep(300);
  // Meanwhile another client is answered at once.
  const t0 = Date.now();
  const g = await fetch(`${serve.url}/v1beta/models/gemini-2.5-flash:generateContent`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hi' }] }] }),
  });
  assert.equal(g.status, 200);
  assert.ok(Date.now() - t0 < 2000, `the generation took ${Date.now() - t0} ms`);
  // The stalled client goes away: skiff ends its upstream call; the session keeps what came.
  sock.destroy();
  let got = 0;
  await waitFor('the upstream to keep what arrived', async () => {
    const q = await fetch(url, { method: 'POST', headers: { 'x-goog-upload-command': 'query' } });
    got = Number(q.headers.get('x-goog-upload-size-received'));
    return got > 0;
  }, 5000);
  assert.ok(got <= half, `the upstream has ${got} bytes of the ${half} sent`);
  const r = await chunk(url, { offset: got, from: got, size: size - got });
  assert.equal(r.status, 200, r.body);
  const f = JSON.parse(r.body).file;
  assert.equal(Number(f.sizeBytes), size);
  assert.equal(f.sha256Hash, sha256(size), 'the resumed upload is the whole file');
});
