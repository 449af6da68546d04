// Test harness: starts the real `skiff sim` and `skiff serve` binaries on free loopback
// ports, and stops them at the end, checking that they exit cleanly (under ASan, a leak or
// an error at exit makes the exit code non-zero).
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import http from 'node:http';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

const here = dirname(fileURLToPath(import.meta.url));
export const SKIFF = process.env.SKIFF_BIN || join(here, '../../build/skiff');

// Spawns `skiff ARGS`, waits for its "listening on http://HOST:PORT" line.
function start(args, { env = {}, name } = {}) {
  return new Promise((resolve, reject) => {
    const base = { ...process.env };
    // A developer's own settings must not leak into a test's skiff.
    for (const k of ['GEMINI_API_KEYS', 'SKIFF_TOKENS', 'SKIFF_LISTEN', 'SKIFF_GEMINI_BASE_URL']) delete base[k];
    const proc = spawn(SKIFF, args, {
      env: { ...base, SKIFF_LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out = { stdout: '', stderr: '' };
    proc.stdout.on('data', (d) => {
      out.stdout += d;
      const m = out.stdout.match(/listening on (http:\/\/[^\s]+)/);
      if (m && !proc.url) {
        proc.url = m[1];
        clearTimeout(proc.startTimer);
        resolve(wrap(proc, out, name));
      }
    });
    proc.stderr.on('data', (d) => { out.stderr += d; });
    proc.on('exit', (code, sig) => {
      proc.exited = { code, sig };
      if (!proc.url) reject(new Error(`${name} exited before listening (${code ?? sig}):\n${out.stderr}`));
    });
    proc.startTimer = setTimeout(() => { if (!proc.url) { proc.kill('SIGKILL'); reject(new Error(`${name} did not start:\n${out.stderr}`)); } }, 10000);
  });
}

function wrap(proc, out, name) {
  return {
    proc,
    url: proc.url,
    get stderr() { return out.stderr; },
    get stdout() { return out.stdout; },
    // SIGTERM, then the exit must be clean: code 0 (ASan/LSan reports make it non-zero).
    async stop() {
      if (!proc.exited) {
        const done = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 10000);
        await done;
        clearTimeout(t);
      }
      assert.equal(proc.exited.code, 0, `${name} did not exit cleanly (${JSON.stringify(proc.exited)}):\n${out.stderr.slice(-4000)}`);
    },
  };
}

export async function startSim(args = []) {
  const sim = await start(['sim', '--listen', '127.0.0.1:0', ...args], { name: 'skiff sim' });
  sim.script = async (entry) => {
    const r = await fetch(`${sim.url}/_sim/script`, { method: 'POST', body: JSON.stringify(entry) });
    assert.equal(r.status, 200, `scripting the sim failed: ${await r.text()}`);
  };
  sim.reset = async () => { await fetch(`${sim.url}/_sim/reset`, { method: 'POST' }); };
  sim.log = async () => (await (await fetch(`${sim.url}/_sim/log`)).json()).requests;
  return sim;
}

// Writes a YAML config and starts `skiff serve` with it. `yaml` is the text without `listen`.
export async function startServe(yaml, { env = {} } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-test-'));
  const path = join(dir, 'skiff.yaml');
  // The catalog refresh would add models.list calls to the sim's log; tests that want it
  // set catalog: themselves.
  const catalog = /^catalog:/m.test(yaml) ? '' : 'catalog: {refresh_s: 0}\n';
  if (TLS_UPSTREAM) {
    // Every plain loopback upstream goes behind a TLS terminator; the config gets ca_file.
    for (const m of [...yaml.matchAll(/base_url: *"?http:\/\/127\.0\.0\.1:(\d+)/g)]) {
      if (Number(m[1]) < 1024) continue; // a port chosen because nothing listens there
      const url = TLS_UPSTREAM === 'h1' ? await tlsTerminator(Number(m[1])) : await h2Bridge(Number(m[1]));
      yaml = yaml.replace(`http://127.0.0.1:${m[1]}`, url);
    }
    if (!/ca_file:/.test(yaml))
      yaml = yaml.replace(/^(\s+)base_url:/m, `$1ca_file: ${tlsCerts().caFile}\n$1base_url:`)
        .replace(/\{base_url:/, `{ca_file: ${tlsCerts().caFile}, base_url:`);
  }
  // The default storage is ./skiff.db in the working directory, which every suite ctest runs
  // at once shares: a key one retires would be retired for the others. Each skiff gets its
  // own file in its own directory instead (still SQLite, the default backend).
  const storage = /^storage:/m.test(yaml) ? '' : `storage: {sqlite: "${join(dir, 'skiff.db')}"}\n`;
  writeFileSync(path, `listen: 127.0.0.1:0\n${catalog}${storage}${yaml}`);
  const serve = await start(['serve', '--config', path], { env, name: 'skiff serve' });
  serve.dir = dir;
  return serve;
}

// Runs `skiff ARGS` to completion; resolves {code, stdout, stderr}.
// A skiff with a pool of keys in front of a fresh sim (quotas off): the fixture of the
// resource and tenancy suites. tokens: client tokens named alice, bob, ... (none: open mode
// on loopback). stop() also checks that no key or token reached skiff's logs.
export async function startPool(keys, { tokens = [], simArgs = [], attempts = 2 } = {}) {
  const sim = await startSim(['--rpm', 'unlimited', '--tpm', 'unlimited', '--rpd', 'unlimited', ...simArgs]);
  const names = ['alice', 'bob', 'carol'];
  const tokenLine = tokens.length
    ? `tokens: [${tokens.map((t, i) => `{name: ${names[i]}, token: ${t}}`).join(', ')}]\n` : '';
  const serve = await startServe(`
upstreams:
  gemini:
    base_url: ${sim.url}
    keys: [${keys.join(', ')}]
${tokenLine}retry: {max_attempts: ${attempts}, base_delay_ms: 10, max_delay_ms: 40, deadline_ms: 8000}
storage: {sqlite: ""}
workers: 1
`);
  const stop = async () => {
    await serve.stop();
    await sim.stop();
    for (const s of [...keys, ...tokens]) {
      if (serve.stderr.includes(s)) throw new Error('a key or a token appeared in the logs');
    }
  };
  return { sim, serve, stop };
}

export function run(args, { env = {}, input } = {}) {
  return new Promise((resolve) => {
    const proc = spawn(SKIFF, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    proc.stdout.on('data', (d) => { stdout += d; });
    proc.stderr.on('data', (d) => { stderr += d; });
    proc.on('exit', (code) => resolve({ code, stdout, stderr }));
    if (input !== undefined) proc.stdin.end(input); else proc.stdin.end();
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls fn (sync or async) every 20 ms until it returns something truthy, and returns that;
// fails naming `what` once ms have passed. For asserting what happens "soon" (an upstream
// call cancelled, a log line written) without a fixed sleep.
export async function waitFor(what, fn, ms = 3000) {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t0 > ms) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

// Waits until a started binary's stderr has a line matching re: logs are written by a log
// thread, so a line can arrive a moment after the answer it is about.
export async function logged(proc, re, ms = 3000) {
  await waitFor(`a log line matching ${re}`, () => re.test(proc.stderr), ms);
}

// FNV-1a 64 of a body, as skiff sim's log reports it (body_fnv): equal hashes prove a relay
// forwarded the bytes unchanged.
export function fnv1a64(data) {
  let h = 0xcbf29ce484222325n;
  for (const b of Buffer.from(data)) h = ((h ^ BigInt(b)) * 0x100000001b3n) & 0xffffffffffffffffn;
  return h.toString(16).padStart(16, '0');
}

// ---- TLS upstreams ---------------------------------------------------------------------------
// A private CA and a certificate for localhost and 127.0.0.1 signed by it, made once per test
// process with the openssl command; skiff trusts the CA through upstreams.gemini.ca_file. A
// second, self-signed certificate is trusted by nothing.
let certs = null;
export function tlsCerts() {
  if (certs) return certs;
  const dir = mkdtempSync(join(tmpdir(), 'skiff-tls-'));
  const ossl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  writeFileSync(join(dir, 'leaf.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n');
  ossl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', '/CN=skiff test CA', '-keyout', 'ca.key', '-out', 'ca.pem');
  ossl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=localhost',
    '-keyout', 'leaf.key', '-out', 'leaf.csr');
  ossl('x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2',
    '-extfile', 'leaf.ext', '-out', 'leaf.pem');
  ossl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-keyout', 'self.key', '-out', 'self.pem');
  const rd = (f) => readFileSync(join(dir, f));
  certs = { dir, caFile: join(dir, 'ca.pem'), ca: rd('ca.pem'), key: rd('leaf.key'), cert: rd('leaf.pem'), selfKey: rd('self.key'), selfCert: rd('self.pem') };
  return certs;
}

// SKIFF_TEST_UPSTREAM=tls runs a suite with every upstream behind TLS (CMake registers the
// *_tls variants): the upstream's plain port gets a TLS terminator in front (node's tls, in
// this process), and skiff is pointed at https://localhost:PORT with ca_file set.
// SKIFF_TEST_UPSTREAM=tls puts an HTTP/2 bridge in front (h2Bridge, below: what Google
// speaks); SKIFF_TEST_UPSTREAM=tls1 the plain TLS terminator, so skiff speaks HTTP/1.1 over
// TLS (the *_tls1 variants).
export const TLS_UPSTREAM = process.env.SKIFF_TEST_UPSTREAM === 'tls' ? 'h2'
  : process.env.SKIFF_TEST_UPSTREAM === 'tls1' ? 'h1' : '';
const terminators = new Map();
export async function tlsTerminator(port) {
  if (terminators.has(port)) return terminators.get(port);
  const { key, cert } = tlsCerts();
  const server = tls.createServer({ key, cert }, (sock) => {
    const back = net.connect(port, '127.0.0.1');
    back.setNoDelay(true);
    sock.setNoDelay(true);
    sock.pipe(back);
    back.pipe(sock);
    // An end travels through the pipes; an error or a reset tears down both sides.
    const end = () => { sock.destroy(); back.destroy(); };
    sock.on('error', end);
    back.on('error', end);
    sock.unref();
    back.unref();
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  server.unref();
  const url = `https://localhost:${server.address().port}`;
  terminators.set(port, url);
  return url;
}

// An HTTPS upstream that speaks HTTP/2 (ALPN h2 only), in front of a plain HTTP/1.1 one
// (`skiff sim`, a raw node server): each stream becomes one request to it, through a
// keep-alive agent, and its answer goes back on the stream as it comes. What the plain
// upstream does to its connection reaches skiff as the stream's fate: an answer cut short
// or a connection closed without answering resets the stream (INTERNAL_ERROR); a stream
// skiff resets (the client went away) aborts the request to the plain upstream. stats
// counts the HTTP/2 connections (sessions) skiff opened and the streams on them; opts:
// maxStreams (SETTINGS_MAX_CONCURRENT_STREAMS, 100 as Google), onStream(stream, headers,
// session) to take a stream over (return true) before it is bridged.
const bridges = new Map();
export const H2_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);
export async function h2Bridge(port, opts = {}) {
  if (!opts.fresh && bridges.has(port)) return bridges.get(port).url;
  const { key, cert } = tlsCerts();
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  const stats = { sessions: 0, open: 0, streams: 0, peakOpen: 0, live: new Set() };
  const server = http2.createSecureServer({ key, cert, noDelay: true, allowHTTP1: true, settings: { maxConcurrentStreams: opts.maxStreams ?? 100 } });
  // Nagle on the bridge's side and a delayed ACK on skiff's hold small frames up to 200 ms.
  server.on('secureConnection', (sock) => sock.setNoDelay(true));
  server.on('session', (sess) => {
    stats.sessions++;
    stats.open++;
    stats.peakOpen = Math.max(stats.peakOpen, stats.open);
    stats.live.add(sess);
    sess.on('close', () => { stats.open--; stats.live.delete(sess); });
    sess.on('error', () => {});
    sess.unref();
  });
  server.on('stream', (stream, headers) => {
    stats.streams++;
    stream.on('error', () => {});
    if (opts.onStream && opts.onStream(stream, headers, stream.session)) return;
    const h = {};
    for (const [k, v] of Object.entries(headers)) if (!k.startsWith(':')) h[k] = v;
    h.host = headers[':authority'];
    const req = http.request({ host: '127.0.0.1', port, method: headers[':method'], path: headers[':path'], headers: h, agent, insecureHTTPParser: true });
    req.removeHeader('connection'); // node's own, not skiff's: the plain upstream sees what skiff sent
    let done = false;
    const reset = () => { if (!stream.destroyed) stream.destroy(new Error('the plain upstream cut the answer')); };
    req.on('error', reset);
    req.on('response', (res) => {
      if (stream.destroyed || stream.closed) { res.destroy(); return; }
      const rh = { ':status': res.statusCode };
      // The fields the upstream's Connection header names are hop-by-hop too (RFC 9110 7.6.1).
      const named = new Set(String(res.headers.connection ?? '').toLowerCase().split(',').map((t) => t.trim()));
      // A value HTTP/2 cannot carry (a NUL, a bare CR or LF) is dropped, as a gateway must.
      for (const [k, v] of Object.entries(res.headers))
        if (!H2_HOP.has(k) && !named.has(k) && !/[\0\r\n]/.test(String(v))) rh[k] = v;
      try { stream.respond(rh); } catch { res.destroy(); return; }
      res.on('data', (d) => { if (!stream.write(d)) { res.pause(); stream.once('drain', () => res.resume()); } });
      res.on('end', () => { done = true; stream.end(); });
      res.on('close', () => { if (!res.complete) reset(); });
    });
    stream.on('close', () => { if (!done) req.destroy(); });
    // A request body ends upstream only when its stream ended cleanly: a stream skiff resets
    // mid-body (an upload cut off) aborts the request, it never looks complete.
    stream.pipe(req, { end: false });
    stream.on('end', () => setImmediate(() => { if (stream.aborted || stream.rstCode) req.destroy(); else req.end(); }));
  });
  // A WebSocket goes over HTTP/1.1 only (the Live API): such a handshake (a client that
  // offers no h2, with allowHTTP1 above) is passed to the plain upstream as it came, and the
  // connection then carries its bytes both ways, as Google's front end does.
  server.on('upgrade', (req, sock, head) => {
    const back = net.connect(port, '127.0.0.1');
    back.setNoDelay(true);
    const lines = [`${req.method} ${req.url} HTTP/1.1`];
    for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
    back.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (head.length) back.write(head);
    sock.pipe(back);
    back.pipe(sock);
    const end = () => { sock.destroy(); back.destroy(); };
    sock.on('error', end);
    back.on('error', end);
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  server.unref();
  const url = `https://localhost:${server.address().port}`;
  const b = { url, server, stats, close: () => { for (const s of stats.live) s.destroy(); server.close(); } };
  if (!opts.fresh) bridges.set(port, b);
  return opts.fresh ? b : url;
}
