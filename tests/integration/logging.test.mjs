// Logging (issue 11 item 8, issue 10 item 11): lines never hold up a request, even when
// nobody reads stderr, and every line is JSON whatever bytes a client put in its path.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { startSim, sleep, SKIFF } from './lib.mjs';

const KEY = 'AIzaLoggingKeyOne00000000000000000000001';
let sim;

before(async () => { sim = await startSim(['--rpm', 'unlimited', '--tpm', 'unlimited', '--rpd', 'unlimited']); });
after(async () => { await sim?.stop(); });

// Starts `skiff serve` in its default storage configuration (a SQLite file) with stderr
// kept as raw bytes; when `readStderr` is false nobody reads it until `resume()`.
function startRaw({ readStderr = true } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-log-'));
  const cfg = join(dir, 'skiff.yaml');
  writeFileSync(cfg, `listen: 127.0.0.1:0
catalog: {refresh_s: 0}
upstreams: {gemini: {base_url: ${sim.url}, keys: [${KEY}]}}
storage: {sqlite: ${join(dir, 'skiff.db')}}
workers: 1
`);
  const env = { ...process.env, SKIFF_LOG_LEVEL: 'info' };
  for (const k of ['GEMINI_API_KEYS', 'SKIFF_TOKENS', 'SKIFF_LISTEN', 'SKIFF_GEMINI_BASE_URL']) delete env[k];
  const proc = spawn(SKIFF, ['serve', '--config', cfg], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const chunks = [];
  const s = {
    proc,
    stderr: () => Buffer.concat(chunks),
    resume() { proc.stderr.on('data', (d) => chunks.push(d)); },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        const done = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 10000);
        await done;
        clearTimeout(t);
      }
      assert.equal(proc.exitCode, 0, `skiff serve did not exit cleanly:\n${s.stderr().toString().slice(-4000)}`);
    },
  };
  if (readStderr) s.resume();
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/[^\s]+)/);
      if (m && !s.url) { s.url = m[1]; resolve(s); }
    });
    proc.on('exit', (code) => { if (!s.url) reject(new Error(`skiff serve exited (${code})`)); });
  });
}

// Splits stderr into lines; each must be UTF-8 and JSON.
function jsonLines(buf) {
  const text = new TextDecoder('utf-8', { fatal: true }).decode(buf);
  return text.split('\n').filter(Boolean).map((line) => {
    try { return JSON.parse(line); } catch (e) { assert.fail(`a log line is not JSON: ${line}`); }
  });
}

const hello = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'Say hello' }] }] });

test('with stderr not read, skiff keeps answering; once it is read, a line counts the lines dropped', async () => {
  const serve = await startRaw({ readStderr: false });
  try {
    const N = 4000;
    let next = 0, ok = 0;
    // Eight clients in parallel; any request that is not answered within 5 s fails the test.
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < N) {
        next++;
        const r = await fetch(`${serve.url}/v1beta/models/gemini-2.5-flash:generateContent`, {
          method: 'POST', headers: { 'content-type': 'application/json' }, body: hello,
          signal: AbortSignal.timeout(5000),
        });
        assert.equal(r.status, 200);
        await r.arrayBuffer();
        ok++;
      }
    }));
    assert.equal(ok, N);

    serve.resume();
    let lines = [];
    for (let i = 0; i < 100; i++) {
      await sleep(100);
      lines = jsonLines(serve.stderr());
      if (lines.some((l) => l.event === 'log_dropped')) break;
    }
    const drops = lines.filter((l) => l.event === 'log_dropped');
    assert.ok(drops.length >= 1, 'no line reported the dropped lines');
    const dropped = drops.reduce((n, l) => n + l.dropped, 0);
    const kept = lines.filter((l) => l.event === 'request').length;
    assert.ok(dropped > 0);
    // Every request was either logged or counted as dropped.
    assert.equal(kept + dropped, N, `${kept} logged + ${dropped} dropped != ${N} requests`);

    // And logging works as before once stderr is read.
    const r = await fetch(`${serve.url}/healthz`);
    assert.equal(r.status, 200);
    for (let i = 0; i < 50 && !jsonLines(serve.stderr()).some((l) => l.path === '/healthz'); i++) await sleep(50);
    assert.ok(jsonLines(serve.stderr()).some((l) => l.path === '/healthz'), 'the next request was not logged');
  } finally {
    serve.resume();
    await serve.stop();
  }
});

// Sends raw bytes and reads the answer until the server closes or 2 s pass.
function rawRequest(url, bytes) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(port), hostname, () => sock.end(bytes));
    const got = [];
    sock.on('data', (d) => got.push(d));
    sock.on('error', reject);
    sock.on('close', () => resolve(Buffer.concat(got)));
    sock.setTimeout(2000, () => sock.destroy());
  });
}

test('a path with bytes that are not UTF-8 is logged as a JSON line, each such byte as U+FFFD', async () => {
  const serve = await startRaw();
  try {
    const path = Buffer.concat([Buffer.from('/v1beta/models/x'), Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0x80]),
      Buffer.from('\u00e9'), Buffer.from('"q')]);
    const req = Buffer.concat([Buffer.from('GET '), path, Buffer.from(' HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')]);
    const answer = await rawRequest(serve.url, req);
    assert.match(answer.toString('latin1'), /^HTTP\/1\.1 [45]\d\d /);
    let line;
    for (let i = 0; i < 50 && !line; i++) {
      await sleep(50);
      line = jsonLines(serve.stderr()).find((l) => l.event === 'request' && l.path?.startsWith('/v1beta/models/x'));
    }
    assert.ok(line, 'the request was not logged');
    assert.equal(line.path, '/v1beta/models/x\ufffd\ufffd\ufffd(\ufffd\u00e9"q');
    assert.equal(typeof line.status, 'number');
  } finally {
    await serve.stop();
  }
});
