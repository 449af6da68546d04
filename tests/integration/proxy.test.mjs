// upstreams.gemini.proxy through real proxies started here: tinyproxy (http:// forward and
// CONNECT, with a password) and dante's danted (socks5:// and socks5h://). skiff's own client
// takes all of them: http:// (CONNECT, or forwarding for a plain http upstream), socks5://
// (resolved by skiff) and socks5h://. The upstream is an
// https server with the test CA (ca_file), so the path is the one to Google from a region the
// API does not serve. The proxy's own log proves the call went through it.
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
import { startServe, tlsCerts, sleep } from './lib.mjs';

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
