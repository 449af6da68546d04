// What a client can cost skiff: memory and time. Unauthenticated bodies are never read
// (the 401 comes at the head), the whole body has a deadline (limits.body_timeout_ms), the
// process holds at most limits.max_buffered_bytes of request bodies, and a client that stops
// reading its answer holds a bounded amount and is dropped after limits.send_timeout_ms, the
// access log saying how many bytes it really got. RSS is read from /proc/PID/status.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServe, run, sleep } from './lib.mjs';
import { rawRequest, startRawUpstream, parseResponse, rssBytes } from './rawhttp.mjs';

const KEY = 'AIzaSyLimitsTestKey0000000000000000000001';
const TOKEN = 'sk-limits-test-0123456789abcdef';
const GEN = '/v1beta/models/gemini-2.5-flash:generateContent';
const MiB = 1024 * 1024;

function config(up, extra = '') {
  return `
tokens:
  - {name: tester, token: ${TOKEN}}
upstreams:
  gemini:
    base_url: ${up.url}
    keys: [${KEY}]
storage: {sqlite: ""}
workers: 2
${extra}`;
}

// A generateContent body of about n bytes.
function bodyOf(n) {
  const pre = '{"contents":[{"parts":[{"text":"', post = '"}]}]}';
  return pre + 'a'.repeat(Math.max(0, n - pre.length - post.length)) + post;
}

// Every socket a test opens, destroyed at its end whatever happened (a socket left open
// would keep the test process alive).
const opened = new Set();

function connect(url) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(port), hostname, () => resolve(s));
    opened.add(s);
    s.on('error', reject);
  });
}

// Collects what a socket receives; got.res is the first response once complete.
function collect(sock) {
  const got = { buf: Buffer.alloc(0), res: null, closed: false };
  sock.on('data', (d) => { got.buf = Buffer.concat([got.buf, d]); got.res = got.res || parseResponse(got.buf); });
  sock.on('close', () => { got.closed = true; });
  sock.on('error', () => {});
  return got;
}

async function until(what, fn, ms = 10000) {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

// The `request` log lines skiff wrote so far.
const requestLines = (serve) => serve.stderr.split('\n').filter((l) => l.includes('"request"')).map((l) => JSON.parse(l));

// The memory bounds are asserted on the sanitizer build: ASan keeps freed blocks in a
// quarantine (256 MB by default) that would count as skiff's RSS, so the scenarios that
// read RSS run with a small one (use-after-free detection stays on).
const smallQuarantine = { env: { ASAN_OPTIONS: `${process.env.ASAN_OPTIONS ?? ''}:quarantine_size_mb=1` } };

test('40 connections trickling large bodies without a token keep skiff under 64 MB, and cost a token holder nothing', async () => {
  const up = await startRawUpstream();
  const serve = await startServe(config(up), smallQuarantine);
  try {
    const pid = serve.proc.pid;
    const base = rssBytes(pid);
    const host = new URL(serve.url).host;
    const conns = [];
    for (let i = 0; i < 40; i++) {
      const s = await connect(serve.url);
      const got = collect(s);
      s.write(`POST ${GEN} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: ${20 * MiB}\r\n\r\n`);
      conns.push({ s, got, sent: 0 });
    }
    // Each sends 2 MiB at once (80 MiB in all, more than the 64 MB allowed), then trickles.
    const piece = Buffer.alloc(256 * 1024, 'a');
    let peak = 0, stop = false;
    const sampler = (async () => { while (!stop) { peak = Math.max(peak, rssBytes(pid)); await sleep(20); } })().catch((e) => e);
    for (let round = 0; round < 8; round++) {
      for (const c of conns) if (!c.s.destroyed) { c.s.write(piece); c.sent += piece.length; }
      await sleep(30);
    }
    // Meanwhile a client with a token is served.
    const ok = await fetch(`${serve.url}${GEN}`, { method: 'POST', headers: { 'x-goog-api-key': TOKEN, 'content-type': 'application/json' }, body: bodyOf(100) });
    const okText = await ok.text();
    assert.equal(ok.status, 200, okText);
    for (let round = 0; round < 20; round++) {
      for (const c of conns) if (!c.s.destroyed) c.s.write('a'.repeat(1024));
      await sleep(100);
    }
    stop = true;
    const err = await sampler;
    if (err) throw err;
    console.log(`RSS ${(base / MiB).toFixed(1)} -> ${(peak / MiB).toFixed(1)} MiB`);
    assert.ok(peak < 64 * MiB, `skiff's RSS reached ${(peak / MiB).toFixed(1)} MiB (from ${(base / MiB).toFixed(1)} MiB)`);
    for (const c of conns) {
      assert.ok(c.got.res, 'no answer to a connection without a token');
      assert.equal(c.got.res.status, 401, c.got.res.body);
      assert.match(JSON.parse(c.got.res.body).error.message, /needs a client token/);
      c.s.destroy();
    }
  } catch (e) {
    throw new Error(`${e.message}\n${serve.stderr.slice(-3000)}`);
  } finally {
    for (const s of opened) s.destroy();
    opened.clear();
    await serve.stop();
    await up.close();
  }
});

test('limits.max_buffered_bytes: a body that would pass it gets a 503 at once; it is free again afterwards', async () => {
  const up = await startRawUpstream();
  const serve = await startServe(config(up, 'limits: {max_buffered_bytes: 1048576}'));
  try {
    const host = new URL(serve.url).host;
    const big = bodyOf(900 * 1024);
    const a = await connect(serve.url);
    const ga = collect(a);
    // A's head is in (and its body counted) once skiff says 100 Continue.
    a.write(`POST ${GEN} HTTP/1.1\r\nHost: ${host}\r\nx-goog-api-key: ${TOKEN}\r\nExpect: 100-continue\r\nContent-Length: ${big.length}\r\n\r\n`);
    await until('100 Continue', () => ga.buf.toString().includes('HTTP/1.1 100 Continue\r\n\r\n'));
    ga.buf = Buffer.alloc(0);
    a.write(big.slice(0, 1000));
    // B's head alone is enough for the answer: its body is never sent.
    const small = bodyOf(300 * 1024);
    const b = await rawRequest(serve.url, `POST ${GEN} HTTP/1.1\r\nHost: ${host}\r\nx-goog-api-key: ${TOKEN}\r\nContent-Length: ${small.length}\r\n\r\n`, { timeoutMs: 3000 });
    assert.equal(b.status, 503, b.body);
    assert.match(JSON.parse(b.body).error.message, /limits\.max_buffered_bytes/);
    a.write(big.slice(1000));
    await until('the held request to be answered', () => ga.res);
    assert.equal(ga.res.status, 200, ga.res.body);
    a.destroy();
    const again = await fetch(`${serve.url}${GEN}`, { method: 'POST', headers: { 'x-goog-api-key': TOKEN }, body: small });
    assert.equal(again.status, 200, await again.text());
  } finally {
    for (const s of opened) s.destroy();
    opened.clear();
    await serve.stop();
    await up.close();
  }
});

test('limits.body_timeout_ms bounds the whole body, however steadily it trickles', async () => {
  const up = await startRawUpstream();
  const serve = await startServe(config(up, 'limits: {body_timeout_ms: 1000, idle_timeout_ms: 60000}'));
  try {
    const host = new URL(serve.url).host;
    const s = await connect(serve.url);
    const got = collect(s);
    const t0 = Date.now();
    s.write(`POST ${GEN} HTTP/1.1\r\nHost: ${host}\r\nx-goog-api-key: ${TOKEN}\r\nContent-Length: 1000\r\n\r\n`);
    while (!got.res && Date.now() - t0 < 5000) {
      s.write('a');
      await sleep(50);
    }
    assert.ok(got.res, 'no answer within 5 s');
    assert.equal(got.res.status, 408, got.res.body);
    assert.match(JSON.parse(got.res.body).error.message, /limits\.body_timeout_ms/);
    const took = Date.now() - t0;
    assert.ok(took >= 900 && took < 3000, `answered after ${took} ms`);
    s.destroy();
    assert.equal(up.requests.length, 0);
  } finally {
    for (const s of opened) s.destroy();
    opened.clear();
    await serve.stop();
    await up.close();
  }
});

test('a client that stops reading a large answer holds little memory, is dropped after limits.send_timeout_ms, and the log says what it got', async () => {
  const SIZE = 96 * MiB;
  const text = 'x'.repeat(MiB);
  // The upstream writes a 96 MiB success as fast as skiff takes it.
  const up = await startRawUpstream((req, sock) => {
    const pre = '{"candidates":[{"content":{"parts":[{"text":"', post = '"}],"role":"model"},"finishReason":"STOP"}]}';
    sock.write(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${pre.length + SIZE + post.length}\r\n\r\n${pre}`);
    let sent = 0;
    const more = () => {
      while (sent < SIZE) {
        sent += text.length;
        if (!sock.write(text)) { sock.once('drain', more); return; }
      }
      sock.write(post);
    };
    more();
  });
  const serve = await startServe(config(up, 'limits: {send_timeout_ms: 1500}'), smallQuarantine);
  try {
    const pid = serve.proc.pid;
    const host = new URL(serve.url).host;
    const s = await connect(serve.url);
    s.pause(); // reads nothing from here on
    let received = 0, closed = false;
    s.on('data', (d) => { received += d.length; });
    s.on('end', () => { closed = true; });
    s.on('error', () => {});
    const t0 = Date.now();
    s.write(`POST ${GEN} HTTP/1.1\r\nHost: ${host}\r\nx-goog-api-key: ${TOKEN}\r\nConnection: close\r\nContent-Length: 100\r\n\r\n${bodyOf(100)}`);
    let peak = 0;
    await until('skiff to drop the connection', () => {
      peak = Math.max(peak, rssBytes(pid));
      return requestLines(serve).some((l) => l.path === GEN);
    }, 15000);
    const took = Date.now() - t0;
    const line = requestLines(serve).find((l) => l.path === GEN);
    assert.equal(line.status, 200);
    assert.equal(line.end, 'incomplete');
    assert.match(line.close, /send timeout/);
    assert.ok(took >= 1400 && took < 8000, `dropped after ${took} ms`);
    console.log(`RSS peak ${(peak / MiB).toFixed(1)} MiB, dropped after ${took} ms`);
    assert.ok(peak < 64 * MiB, `skiff's RSS reached ${(peak / MiB).toFixed(1)} MiB while the answer was pending`);
    // What the client gets when it reads again is exactly what the log says it was sent.
    s.resume();
    await until('the client to read to the end', () => closed);
    assert.equal(received, line.bytes);
    assert.ok(received < SIZE / 2, `the client got ${received} bytes`);
  } catch (e) {
    throw new Error(`${e.message}\n${serve.stderr.slice(-3000)}`);
  } finally {
    for (const s of opened) s.destroy();
    opened.clear();
    await serve.stop();
    await up.close();
  }
});

test('a success larger than skiff holds reaches a reading client whole, with skiff\'s headers', async () => {
  const SIZE = 12 * MiB;
  const pre = '{"candidates":[{"content":{"parts":[{"text":"', post = '"}],"role":"model"},"finishReason":"STOP"}],"usageMetadata":{"totalTokenCount":7}}';
  const chunk = Buffer.alloc(256 * 1024);
  for (let i = 0; i < chunk.length; i++) chunk[i] = 97 + (i % 26);
  const up = await startRawUpstream((req, sock) => {
    sock.write(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${pre.length + SIZE + post.length}\r\n\r\n${pre}`);
    let sent = 0;
    const more = () => {
      while (sent < SIZE) {
        sent += chunk.length;
        if (!sock.write(chunk)) { sock.once('drain', more); return; }
      }
      sock.write(post);
    };
    more();
  });
  const serve = await startServe(config(up));
  try {
    const r = await fetch(`${serve.url}${GEN}`, { method: 'POST', headers: { 'x-goog-api-key': TOKEN }, body: bodyOf(100) });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-skiff-attempts'), '1');
    assert.equal(r.headers.get('x-skiff-key'), 'key#1');
    const body = Buffer.from(await r.arrayBuffer());
    assert.equal(body.length, pre.length + SIZE + post.length);
    const answer = JSON.parse(body.toString());
    assert.equal(answer.candidates[0].content.parts[0].text.length, SIZE);
    assert.equal(answer.candidates[0].content.parts[0].text.slice(0, 26), 'abcdefghijklmnopqrstuvwxyz');
    assert.equal(answer.usageMetadata.totalTokenCount, 7);
  } finally {
    await serve.stop();
    await up.close();
  }
});

test('the new limits are checked like the others (ranges, did-you-mean)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-limits-'));
  const check = async (yaml, re) => {
    const path = join(dir, 'skiff.yaml');
    writeFileSync(path, `listen: 127.0.0.1:0\n${yaml}\n`);
    const r = await run(['serve', '--config', path]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, re);
  };
  await check('limits: {body_timeout_ms: 0}', /limits\.body_timeout_ms.*from 1 to 86400000/);
  await check('limits: {send_timeout_ms: -5}', /limits\.send_timeout_ms/);
  await check('limits: {max_buffered_bytes: 1000}', /limits\.max_buffered_bytes.*1048576/);
  await check('limits: {max_bufferd_bytes: 1048576}', /did you mean 'max_buffered_bytes'/);
  await check('limits: {send_timeout: 10}', /did you mean 'send_timeout_ms'/);
});
