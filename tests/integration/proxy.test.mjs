// upstreams.gemini.proxy through real proxies started here: tinyproxy (http:// forward and
// CONNECT, with a password; behind a TLS terminator for https://) and dante's danted
// (socks5:// and socks5h://). skiff's own client takes all of them: http:// (CONNECT, or
// forwarding for a plain http upstream), https:// (TLS to the proxy, then the same inside
// it: TLS to the upstream inside TLS to the proxy), socks5:// (resolved by skiff) and
// socks5h://. The upstream is an https server with the test CA (ca_file), so the path is the
// one to Google from a region the API does not serve. The proxy's own log proves the call
// went through it.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import tls from 'node:tls';
import { startServe, tlsCerts, tlsTerminator, run, sleep } from './lib.mjs';

const KEY = 'AIzaSyProxyTransportKey00000000000000001';
const TOKEN = 'sk-proxy-test-0123456789abcdef';
const PROXY_PASS = 's3cretProxyPass';
const GEN = '/v1beta/models/gemini-2.5-flash:generateContent';
const ANSWER = JSON.stringify({ candidates: [{ content: { parts: [{ text: 'Through the proxy.' }], role: 'model' }, finishReason: 'STOP', index: 0 }] });

const dir = mkdtempSync(join(tmpdir(), 'skiff-proxy-'));
const procs = [];
after(() => { for (const p of procs) p.kill('SIGTERM'); });

async function freePort() {
  const s = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

async function waitPort(port) {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise((r) => {
      const c = net.connect(port, '127.0.0.1', () => { c.destroy(); r(true); });
      c.on('error', () => r(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`nothing listens on ${port}`);
}

async function startTinyproxy() {
  const port = await freePort();
  const log = join(dir, `tinyproxy-${port}.log`);
  const conf = join(dir, `tinyproxy-${port}.conf`);
  writeFileSync(conf, `Port ${port}\nListen 127.0.0.1\nTimeout 60\nMaxClients 50\nAllow 127.0.0.1\n` +
    `LogLevel Connect\nLogFile "${log}"\nBasicAuth skiffuser ${PROXY_PASS}\n`);
  const p = spawn('tinyproxy', ['-d', '-c', conf], { stdio: 'ignore' });
  procs.push(p);
  await waitPort(port);
  return { port, log: () => (existsSync(log) ? readFileSync(log, 'utf8') : '') };
}

async function startDante() {
  const port = await freePort();
  const log = join(dir, `danted-${port}.log`);
  const conf = join(dir, `danted-${port}.conf`);
  writeFileSync(conf, `logoutput: ${log}\ninternal: 127.0.0.1 port = ${port}\nexternal: 127.0.0.1\n` +
    'clientmethod: none\nsocksmethod: none\nuser.privileged: root\nuser.unprivileged: nobody\n' +
    'client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }\nsocks pass { from: 127.0.0.0/8 to: 0.0.0.0/0 log: connect }\n');
  const p = spawn('danted', ['-f', conf, '-N', '1'], { stdio: 'ignore' });
  procs.push(p);
  await waitPort(port);
  return { port, log: () => (existsSync(log) ? readFileSync(log, 'utf8') : '') };
}

// tls: https (HTTP/1.1 only); h2: an https upstream that speaks HTTP/2 only (ALPN h2),
// counting the calls that came over HTTP/2 and the connections.
async function startUpstream(tls, h2 = false) {
  const up = { requests: 0, h2: 0, connections: 0 };
  const handler = (req, res) => {
    req.resume();
    req.on('end', () => {
      up.requests++;
      if (req.httpVersion === '2.0') up.h2++;
      res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8' });
      res.end(ANSWER);
    });
  };
  const c = tlsCerts();
  const server = h2 ? http2.createSecureServer({ key: c.key, cert: c.cert }, handler)
    : tls ? https.createServer({ key: c.key, cert: c.cert }, handler) : http.createServer(handler);
  const sessions = new Set();
  server.on(h2 ? 'session' : 'secureConnection', (s) => { up.connections++; sessions.add(s); s.on('close', () => sessions.delete(s)); });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  up.port = server.address().port;
  up.close = () => new Promise((r) => { server.closeAllConnections?.(); for (const s of sessions) s.destroy(); server.close(r); });
  return up;
}

function config(baseUrl, proxy) {
  return `
tokens:
  - {name: tester, token: ${TOKEN}}
upstreams:
  gemini:
    base_url: ${baseUrl}
    keys: [${KEY}]
    ca_file: ${tlsCerts().caFile}
    proxy: "${proxy}"
retry: {max_attempts: 2, base_delay_ms: 10, max_delay_ms: 40, deadline_ms: 8000}
storage: {sqlite: ""}
workers: 1
`;
}

async function through(baseUrl, proxy, fn) {
  const serve = await startServe(config(baseUrl, proxy));
  try {
    await fn(serve);
  } finally {
    await serve.stop();
    for (const s of [KEY, TOKEN, PROXY_PASS]) {
      assert.ok(!serve.stderr.includes(s) && !serve.stdout.includes(s), 'a secret appeared in the logs');
    }
  }
}

async function post(serve) {
  const r = await fetch(`${serve.url}${GEN}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-goog-api-key': TOKEN },
    body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hello' }] }] }),
  });
  return { status: r.status, text: await r.text() };
}

test('https upstream through an http:// proxy with a password (CONNECT): answered, and the proxy logged the tunnel', async () => {
  const tp = await startTinyproxy();
  const up = await startUpstream(true);
  try {
    await through(`https://localhost:${up.port}`, `http://skiffuser:${PROXY_PASS}@127.0.0.1:${tp.port}`, async (serve) => {
      for (let i = 0; i < 3; i++) {
        const r = await post(serve);
        assert.equal(r.status, 200, r.text);
        assert.equal(r.text, ANSWER);
      }
      assert.equal(up.requests, 3);
      assert.match(tp.log(), new RegExp(`CONNECT localhost:${up.port} HTTP/1.1`));
    });
    // A wrong password: a 502 that never repeats the password that was configured.
    await through(`https://localhost:${up.port}`, `http://skiffuser:wrong${PROXY_PASS}@127.0.0.1:${tp.port}`, async (serve) => {
      const r = await post(serve);
      assert.equal(r.status, 502, r.text);
      assert.match(JSON.parse(r.text).error.message, /the proxy refused the tunnel to the upstream: HTTP 40[17] .*check the credentials in upstreams\.gemini\.proxy/);
      assert.ok(!r.text.includes(PROXY_PASS), 'the proxy password reached the client');
    });
  } finally {
    await up.close();
  }
});

test('plain http upstream through an http:// proxy: answered, and the proxy logged the request', async () => {
  const tp = await startTinyproxy();
  const up = await startUpstream(false);
  try {
    await through(`http://127.0.0.1:${up.port}`, `http://skiffuser:${PROXY_PASS}@127.0.0.1:${tp.port}`, async (serve) => {
      const r = await post(serve);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.text, ANSWER);
      assert.match(tp.log(), new RegExp(`POST http://127\\.0\\.0\\.1:${up.port}${GEN.replace(/[.:]/g, '\\$&')}`));
    });
  } finally {
    await up.close();
  }
});

for (const scheme of ['socks5', 'socks5h']) {
  test(`https upstream through a ${scheme}:// proxy (danted): answered, and the proxy logged the connection`, async () => {
    const d = await startDante();
    const up = await startUpstream(true);
    try {
      await through(`https://localhost:${up.port}`, `${scheme}://127.0.0.1:${d.port}`, async (serve) => {
        const r = await post(serve);
        assert.equal(r.status, 200, r.text);
        assert.equal(r.text, ANSWER);
        assert.equal(up.requests, 1);
        assert.match(d.log(), new RegExp(`pass\\(1\\): tcp/connect .*127\\.0\\.0\\.1\\.${up.port}`));
      });
    } finally {
      await up.close();
    }
  });
}

// An https:// proxy: tinyproxy behind a TLS terminator (node's tls, the test CA's
// certificate for localhost), so the only way to the proxy is TLS to it.
async function startHttpsProxy() {
  const tp = await startTinyproxy();
  const url = await tlsTerminator(tp.port);
  return { ...tp, hostport: url.slice('https://'.length) };
}

test('https upstream through an https:// proxy with a password: TLS to the proxy, CONNECT inside it, TLS to the upstream inside that', async () => {
  const tp = await startHttpsProxy();
  const up = await startUpstream(true);
  try {
    await through(`https://localhost:${up.port}`, `https://skiffuser:${PROXY_PASS}@${tp.hostport}`, async (serve) => {
      for (let i = 0; i < 3; i++) {
        const r = await post(serve);
        assert.equal(r.status, 200, r.text);
        assert.equal(r.text, ANSWER);
      }
      assert.equal(up.requests, 3);
      assert.match(tp.log(), new RegExp(`CONNECT localhost:${up.port} HTTP/1.1`));
    });
    await through(`https://localhost:${up.port}`, `https://skiffuser:wrong${PROXY_PASS}@${tp.hostport}`, async (serve) => {
      const r = await post(serve);
      assert.equal(r.status, 502, r.text);
      assert.match(JSON.parse(r.text).error.message, /the proxy refused the tunnel to the upstream: HTTP 40[17] .*check the credentials in upstreams\.gemini\.proxy/);
      assert.ok(!r.text.includes(PROXY_PASS), 'the proxy password reached the client');
    });
  } finally {
    await up.close();
  }
});

test('plain http upstream through an https:// proxy: the request forwarded inside TLS to the proxy', async () => {
  const tp = await startHttpsProxy();
  const up = await startUpstream(false);
  try {
    await through(`http://127.0.0.1:${up.port}`, `https://skiffuser:${PROXY_PASS}@${tp.hostport}`, async (serve) => {
      for (let i = 0; i < 2; i++) {
        const r = await post(serve);
        assert.equal(r.status, 200, r.text);
        assert.equal(r.text, ANSWER);
      }
      assert.equal(up.requests, 2);
      assert.match(tp.log(), new RegExp(`POST http://127\\.0\\.0\\.1:${up.port}${GEN.replace(/[.:]/g, '\\$&')}`));
    });
  } finally {
    await up.close();
  }
});

test('an https:// proxy whose certificate is not trusted: a 502 that says so and names the proxy, and no call goes out', async () => {
  const tp = await startTinyproxy();
  const c = tlsCerts();
  // The same terminator, with the self-signed certificate nothing trusts.
  const term = tls.createServer({ key: c.selfKey, cert: c.selfCert }, (sock) => {
    const back = net.connect(tp.port, '127.0.0.1');
    sock.pipe(back);
    back.pipe(sock);
    const end = () => { sock.destroy(); back.destroy(); };
    sock.on('error', end);
    back.on('error', end);
  });
  term.listen(0, '127.0.0.1');
  await new Promise((r) => term.once('listening', r));
  const up = await startUpstream(true);
  try {
    await through(`https://localhost:${up.port}`, `https://skiffuser:${PROXY_PASS}@localhost:${term.address().port}`, async (serve) => {
      const r = await post(serve);
      assert.equal(r.status, 502, r.text);
      assert.match(JSON.parse(r.text).error.message, /the proxy's TLS certificate could not be verified \(self-signed certificate\); for a private CA set upstreams\.gemini\.ca_file/);
      assert.equal(up.requests, 0);
      assert.doesNotMatch(tp.log(), /CONNECT localhost/);
    });
  } finally {
    term.close();
    await up.close();
  }
});

test('skiff doctor and the catalog refresh go through the https:// proxy too', async () => {
  const tp = await startHttpsProxy();
  const models = JSON.stringify({ models: [{ name: 'models/gemini-2.5-flash', inputTokenLimit: 1048576, outputTokenLimit: 65536, supportedGenerationMethods: ['generateContent'] }] });
  const seen = [];
  const c = tlsCerts();
  const server = https.createServer({ key: c.key, cert: c.cert }, (req, res) => {
    seen.push({ url: req.url, key: req.headers['x-goog-api-key'] });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(req.url.startsWith('/v1beta/models?') ? models : ANSWER);
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const port = server.address().port;
  const cfgDir = mkdtempSync(join(tmpdir(), 'skiff-proxy-doctor-'));
  const cfg = join(cfgDir, 'skiff.yaml');
  writeFileSync(cfg, config(`https://localhost:${port}`, `https://skiffuser:${PROXY_PASS}@${tp.hostport}`));
  try {
    const r = await run(['doctor', '--config', cfg], { env: { GEMINI_API_KEYS: '', SKIFF_TOKENS: '', SKIFF_LISTEN: '', SKIFF_GEMINI_BASE_URL: '' } });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /checking key#1 \(1\/1\) \.\.\. valid/);
    assert.ok(!r.stdout.includes(PROXY_PASS) && !r.stderr.includes(PROXY_PASS) && !r.stdout.includes(KEY), 'a secret in doctor\'s output');
    assert.ok(seen.some((s) => s.url === '/v1beta/models?pageSize=1' && s.key === KEY), JSON.stringify(seen));
    assert.match(tp.log(), new RegExp(`CONNECT localhost:${port} HTTP/1.1`));
    // serve's refresher: models.list at start, through the same proxy.
    seen.length = 0;
    const serve = await startServe(config(`https://localhost:${port}`, `https://skiffuser:${PROXY_PASS}@${tp.hostport}`).replace('workers: 1', 'workers: 1\ncatalog: {refresh_s: 3600}'));
    try {
      for (let i = 0; i < 100 && !seen.some((s) => s.url === '/v1beta/models?pageSize=1000'); i++) await sleep(50);
      assert.ok(seen.some((s) => s.url === '/v1beta/models?pageSize=1000' && s.key === KEY), JSON.stringify(seen));
      for (let i = 0; i < 100 && !/catalog_refresh/.test(serve.stderr + serve.stdout); i++) await sleep(50);
      assert.match(serve.stderr + serve.stdout, /"catalog_refresh".*"models":1/);
    } finally {
      await serve.stop();
      assert.ok(!serve.stderr.includes(PROXY_PASS) && !serve.stdout.includes(PROXY_PASS));
    }
  } finally {
    server.closeAllConnections?.();
    server.close();
  }
});

// Pause and resume through the stacked sessions: a long stream to a client that stops
// reading for a while must arrive whole and in order, with nothing stuck in either TLS
// session (each is drained after every feed and on resume).
for (const upTls of [true, false]) {
  test(`an 8 MB stream through an https:// proxy to a client that pauses arrives whole, in order, once (${upTls ? 'https' : 'http'} upstream)`, async () => {
    const tp = await startHttpsProxy();
    const N = 8000;
    const events = [];
    for (let i = 0; i < N; i++) {
      const text = `[#${String(i).padStart(6, '0')}] ${'sail '.repeat(196)}`;
      events.push(`data: ${JSON.stringify({ candidates: [{ content: { parts: [{ text }], role: 'model' }, index: 0 }] })}\r\n\r\n`);
    }
    events.push(`data: ${JSON.stringify({ candidates: [{ content: { parts: [{ text: '' }], role: 'model' }, finishReason: 'STOP', index: 0 }] })}\r\n\r\n`);
    const all = Buffer.from(events.join(''));
    const c = tlsCerts();
    const handler = async (req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (const ev of events) {
        if (res.destroyed) return;
        if (!res.write(ev)) await new Promise((r) => { res.once('drain', r); res.once('close', r); });
      }
      res.end();
    };
    const server = upTls ? https.createServer({ key: c.key, cert: c.cert }, handler) : http.createServer(handler);
    server.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const base = upTls ? `https://localhost:${server.address().port}` : `http://127.0.0.1:${server.address().port}`;
    try {
      await through(base, `https://skiffuser:${PROXY_PASS}@${tp.hostport}`, async (serve) => {
        const u = new URL(serve.url);
        const got = await new Promise((resolve, reject) => {
          const st = { chunks: [], bytes: 0, paused: false };
          const req = http.request({
            host: u.hostname, port: Number(u.port), method: 'POST', agent: false,
            path: '/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse',
            headers: { 'content-type': 'application/json', 'x-goog-api-key': TOKEN },
          }, (res) => {
            st.res = res;
            res.on('data', (d) => {
              st.chunks.push(d);
              st.bytes += d.length;
              if (!st.paused && st.bytes >= 8192) {
                st.paused = true;
                res.pause();
                setTimeout(() => res.resume(), 1500);
              }
            });
            res.on('end', () => resolve(st));
            res.on('error', reject);
          });
          req.on('error', reject);
          req.end(JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'a long story' }] }] }));
        });
        assert.equal(got.res.statusCode, 200);
        assert.equal(got.res.headers['x-skiff-attempts'], '1');
        const body = Buffer.concat(got.chunks);
        const seq = [...body.toString().matchAll(/\[#(\d{6})\]/g)].map((m) => Number(m[1]));
        const firstBad = seq.findIndex((v, i) => v !== i);
        assert.equal(firstBad, -1, `event ${firstBad} is #${seq[firstBad]}`);
        assert.equal(seq.length, N);
        assert.equal(body.length, all.length);
        assert.ok(body.equals(all), 'the bytes differ from the upstream\'s');
      });
    } finally {
      server.closeAllConnections?.();
      server.close();
    }
  });
}

// HTTP/2 goes through the tunnels unchanged (ALPN runs inside them): 10 calls at once share
// one tunnel, where HTTP/1.1 would open one each.
for (const [name, proxyUrl] of [['http:// (CONNECT)', (tp) => `http://skiffuser:${PROXY_PASS}@127.0.0.1:${tp.port}`], ['socks5h://', (d) => `socks5h://127.0.0.1:${d.port}`]]) {
  test(`an HTTP/2 upstream through the ${name} proxy: 10 calls at once over HTTP/2 share one tunnel`, async () => {
    const px = name.startsWith('http') ? await startTinyproxy() : await startDante();
    const up = await startUpstream(true, true);
    try {
      await through(`https://localhost:${up.port}`, proxyUrl(px), async (serve) => {
        const first = await post(serve);
        assert.equal(first.status, 200, first.text);
        const rs = await Promise.all(Array.from({ length: 10 }, () => post(serve)));
        for (const r of rs) assert.equal(r.status, 200, r.text);
        assert.equal(up.requests, 11);
        assert.equal(up.h2, 11, 'calls went over HTTP/1.1');
        assert.equal(up.connections, 1, `${up.connections} tunnels for 11 calls`);
      });
    } finally {
      await up.close();
    }
  });
}
