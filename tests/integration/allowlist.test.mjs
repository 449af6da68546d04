// What goes upstream, and what comes back (relay/uprequest.h): skiff serve in front of a raw
// TCP upstream written here that records every request it gets and answers as Google does,
// including the 403/401/400 Google gives for headers and parameters that are not the key's
// fault (a foreign X-Goog-User-Project, X-HTTP-Method-Override, ?access_token=, a second
// key hidden as ?k%65y=). Those answers blame the key unless they never happen: each
// scenario shows the poison never reaches the upstream, and every key stays healthy.
// Also: the query and model-name checks, the response-header allowlist, and that a
// password in base_url or proxy is never printed. Runs over plain http and, as allowlist_tls,
// over https.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServe, run, sleep } from './lib.mjs';

const KEYS = ['AIzaSyAllowlistTestKeyNumber00000000001', 'AIzaSyAllowlistTestKeyNumber00000000002'];
const TOKEN = 'sk-allowlist-test-0123456789abcdef';
const MODEL = 'gemini-2.5-flash';
const GEN = `/v1beta/models/${MODEL}:generateContent`;
const STREAM = `/v1beta/models/${MODEL}:streamGenerateContent`;
const HELLO = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'Hello' }] }] });

// ---- an upstream that answers like Google ----------------------------------------------------

function answer(text) {
  return `${JSON.stringify({
    candidates: [{ content: { parts: [{ text }], role: 'model' }, finishReason: 'STOP', index: 0 }],
    usageMetadata: { promptTokenCount: 2, candidatesTokenCount: 3, totalTokenCount: 5 },
    modelVersion: MODEL,
  }, null, 2)}\n`;
}

function send(sock, status, body, headers = []) {
  const b = Buffer.from(body);
  sock.write(Buffer.concat([Buffer.from(`HTTP/1.1 ${status} X\r\n${[
    'Content-Type: application/json; charset=UTF-8', ...headers, `Content-Length: ${b.length}`,
  ].map((h) => `${h}\r\n`).join('')}\r\n`), b]));
}

function googleError(sock, code, status, message, reason) {
  send(sock, code, `${JSON.stringify({
    error: {
      code, message, status,
      details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason, domain: 'googleapis.com', metadata: { service: 'generativelanguage.googleapis.com' } }],
    },
  }, null, 2)}\n`);
}

// Google's answers to the poison (the texts of the live API), else a plain answer.
function google(req, sock) {
  const q = new URL(req.target, 'http://upstream').searchParams; // decodes k%65y into key
  const project = req.all('x-goog-user-project')[0];
  if (project)
    return googleError(sock, 403, 'PERMISSION_DENIED', `Caller does not have required permission to use project ${project}. Grant the caller the roles/serviceusage.serviceUsageConsumer role, or a custom role with the serviceusage.services.use permission, by visiting https://console.developers.google.com/iam-admin/iam/project?project=${project} and then retry.`, 'USER_PROJECT_DENIED');
  if (req.all('x-http-method-override').length)
    return googleError(sock, 403, 'PERMISSION_DENIED', 'The caller does not have permission', 'ACCESS_DENIED');
  if (q.has('access_token'))
    return googleError(sock, 401, 'UNAUTHENTICATED', 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.', 'ACCESS_TOKEN_TYPE_UNSUPPORTED');
  if (q.has('key'))
    return googleError(sock, 400, 'INVALID_ARGUMENT', 'API key not valid. Please pass a valid API key.', 'API_KEY_INVALID');
  return send(sock, 200, answer('Hi there.'));
}

// A TCP server that parses each request (head, then a Content-Length body), records it
// and hands it to up.handler.
async function startUpstream(handler = google) {
  const up = { handler, requests: [], sockets: new Set() };
  const server = net.createServer((sock) => {
    up.sockets.add(sock);
    sock.on('error', () => {});
    sock.on('close', () => up.sockets.delete(sock));
    let buf = Buffer.alloc(0);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        const lines = head.split('\r\n');
        const [method, target] = lines[0].split(' ');
        const headers = lines.slice(1).map((l) => {
          const c = l.indexOf(':');
          return [l.slice(0, c).toLowerCase(), l.slice(c + 1).trim()];
        });
        const cl = headers.find(([n]) => n === 'content-length');
        const len = cl ? Number(cl[1]) : 0;
        if (buf.length < end + 4 + len) return;
        buf = buf.subarray(end + 4 + len);
        const req = { method, target, head, headers, all: (n) => headers.filter(([h]) => h === n).map(([, v]) => v) };
        up.requests.push(req);
        up.handler(req, sock);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  up.port = server.address().port;
  up.url = `http://127.0.0.1:${up.port}`;
  up.close = () => new Promise((r) => { for (const s of up.sockets) s.destroy(); server.close(r); });
  return up;
}

function config(baseUrl, extra = '', gemini = '') {
  return `
tokens:
  - {name: tester, token: ${TOKEN}}
upstreams:
  gemini:
    base_url: ${baseUrl}
    keys: [${KEYS.join(', ')}]
${gemini}retry: {max_attempts: 4, base_delay_ms: 10, max_delay_ms: 40, deadline_ms: 8000}
storage: {sqlite: ""}
${extra}`;
}

async function withRelay(fn, { handler, gemini = '' } = {}) {
  const up = await startUpstream(handler);
  const serve = await startServe(config(up.url, '', gemini));
  try {
    await fn({ up, serve });
  } finally {
    await serve.stop();
    await up.close();
  }
}

async function health(serve) {
  const r = await fetch(`${serve.url}/healthz`);
  return { ...(await r.json()), code: r.status };
}

// One request on a fresh connection, written byte for byte (fetch would fix the target).
function raw(url, data) {
  const { port } = new URL(url);
  return new Promise((resolve) => {
    const sock = net.connect(Number(port), '127.0.0.1');
    let out = '';
    sock.on('data', (d) => {
      out += d.toString('latin1');
      const end = out.indexOf('\r\n\r\n');
      const m = out.match(/content-length: (\d+)/i);
      if (end >= 0 && m && out.length >= end + 4 + Number(m[1])) sock.destroy();
    });
    sock.on('error', () => {});
    sock.on('close', () => {
      const end = out.indexOf('\r\n\r\n');
      resolve({ status: Number(out.split(' ')[1]), head: out.slice(0, end), body: out.slice(end + 4) });
    });
    sock.write(Buffer.from(data, 'latin1'));
  });
}

const post = (path, body = HELLO) => `POST ${path} HTTP/1.1\r\nHost: skiff\r\nx-goog-api-key: ${TOKEN}\r\n` +
  `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
const get = (path) => `GET ${path} HTTP/1.1\r\nHost: skiff\r\nx-goog-api-key: ${TOKEN}\r\nConnection: close\r\n\r\n`;

// ---- 1. the poison never goes upstream -------------------------------------------------------

test('X-Goog-User-Project, X-HTTP-Method-Override, ?access_token= and ?k%65y= never reach the upstream; every key stays healthy', async () => {
  await withRelay(async ({ up, serve }) => {
    const cases = [
      { what: 'X-Goog-User-Project', path: GEN, headers: { 'X-Goog-User-Project': 'not-mine' } },
      { what: 'X-HTTP-Method-Override', path: GEN, headers: { 'X-HTTP-Method-Override': 'DELETE' } },
      { what: '?access_token=', path: `${GEN}?access_token=ya29.a0AfB_byC-not-a-real-token` },
      { what: '?k%65y=', path: `${GEN}?k%65y=AIzaSyNotOneOfSkiffsKeys000000000000000` },
      { what: '?%6bey= beside alt', path: `${GEN}?alt=json&%6bey=AIzaSyNotOneOfSkiffsKeys0000000000000` },
    ];
    for (const c of cases) {
      const r = await fetch(`${serve.url}${c.path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-goog-api-key': TOKEN, ...(c.headers ?? {}) },
        body: HELLO,
      });
      const text = await r.text();
      assert.equal(r.status, 200, `${c.what}: ${text.slice(0, 300)}`);
      assert.equal(r.headers.get('x-skiff-attempts'), '1', c.what);
      const h = await health(serve);
      assert.deepEqual([h.code, h.usable_keys], [200, 2], `${c.what}: a key was blamed: ${JSON.stringify(h)}`);
      // The next request succeeds.
      const next = await fetch(`${serve.url}${GEN}`, { method: 'POST', headers: { 'x-goog-api-key': TOKEN }, body: HELLO });
      assert.equal(next.status, 200, c.what);
      await next.text();
    }
    for (const q of up.requests) {
      assert.deepEqual(q.all('x-goog-user-project'), []);
      assert.deepEqual(q.all('x-http-method-override'), []);
      assert.ok(!/access_token|k%65y|%6bey|[?&]key=/i.test(q.target), `poison in ${q.target}`);
      assert.ok(!q.head.includes(TOKEN), 'the client token reached the upstream');
      assert.ok(KEYS.includes(q.all('x-goog-api-key')[0]));
    }
    assert.equal(up.requests.length, 2 * cases.length);
  });
});

test('only the allowlisted request headers go upstream, with their values; hop-by-hop and credentials never', async () => {
  await withRelay(async ({ up, serve }) => {
    const r = await fetch(`${serve.url}${GEN}?prettyPrint=false&fields=candidates&quotaUser=x`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json',
        'user-agent': 'google-genai-sdk/1.30.0 gl-node/v22.11.0',
        'x-goog-api-client': 'google-genai-sdk/1.30.0 gl-node/v22.11.0',
        traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
        tracestate: 'congo=t61rcWkgMzE',
        authorization: `Bearer ${TOKEN}`,
        'x-goog-user-project': 'not-mine',
        'x-goog-request-params': 'a=b',
        'x-server-timeout': '5',
        'x-skiff-deadline-ms': '6000',
        cookie: 'SID=1',
        'x-forwarded-for': '10.1.2.3',
        'accept-encoding': 'gzip',
      },
      body: HELLO,
    });
    assert.equal(r.status, 200, await r.text());
    assert.equal(up.requests.length, 1);
    const q = up.requests[0];
    assert.equal(q.target, GEN, 'no client query parameter is an allowlisted one here');
    const names = [...new Set(q.headers.map(([n]) => n))].sort();
    assert.deepEqual(names, ['accept', 'content-length', 'content-type', 'host', 'traceparent',
      'tracestate', 'user-agent', 'x-goog-api-client', 'x-goog-api-key']);
    assert.deepEqual(q.all('user-agent'), ['google-genai-sdk/1.30.0 gl-node/v22.11.0']);
    assert.deepEqual(q.all('x-goog-api-client'), ['google-genai-sdk/1.30.0 gl-node/v22.11.0']);
    assert.deepEqual(q.all('traceparent'), ['00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01']);
    assert.deepEqual(q.all('tracestate'), ['congo=t61rcWkgMzE']);
    assert.deepEqual(q.all('accept'), ['application/json']);
    assert.equal(q.all('x-goog-api-key').length, 1);
  });
});

test('Authorization : Bearer (a space before the colon) never reaches the upstream', async () => {
  await withRelay(async ({ up, serve }) => {
    const r = await raw(serve.url, `POST ${GEN} HTTP/1.1\r\nHost: skiff\r\nx-goog-api-key: ${TOKEN}\r\n` +
      `Authorization : Bearer ${TOKEN}\r\nContent-Length: ${HELLO.length}\r\nConnection: close\r\n\r\n${HELLO}`);
    // Refusing the head (400) is as good as dropping the field: either way nothing leaks.
    assert.ok(r.status === 200 || r.status === 400, `got ${r.status}`);
    for (const q of up.requests) assert.ok(!q.head.includes(TOKEN), 'the client token reached the upstream');
  });
});

test('upstreams.gemini.forward_headers lets a named header through (and only that one)', async () => {
  await withRelay(async ({ up, serve }) => {
    const r = await fetch(`${serve.url}${GEN}`, {
      method: 'POST',
      headers: { 'x-goog-api-key': TOKEN, 'x-server-timeout': '30', 'x-goog-user-project': 'mine' },
      body: HELLO,
    });
    assert.equal(r.status, 200, await r.text());
    assert.deepEqual(up.requests[0].all('x-server-timeout'), ['30']);
    assert.deepEqual(up.requests[0].all('x-goog-user-project'), []);
  }, { gemini: '    forward_headers: [X-Server-Timeout]\n' });
});

test('a credential or hop-by-hop header in forward_headers is a config error that says why', async () => {
  for (const [name, says] of [['Authorization', 'credential'], ['Connection', 'hop-by-hop'], ['x goog', 'not a header name']]) {
    const dir = (await import('node:fs')).mkdtempSync(join((await import('node:os')).tmpdir(), 'skiff-allow-'));
    const path = join(dir, 'skiff.yaml');
    writeFileSync(path, `upstreams:\n  gemini:\n    keys: [${KEYS[0]}]\n    forward_headers: ["${name}"]\n`);
    const r = await run(['serve', '--config', path]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /skiff\.yaml:4: upstreams\.gemini\.forward_headers\[0\]/);
    assert.ok(r.stderr.includes(says), r.stderr);
  }
});

// ---- 2. the query and the path ---------------------------------------------------------------

test('?$alt=sse and ?al%74=sse are alt=sse upstream, and skiff streams SSE (first event before the last)', async () => {
  const ev = (text, finish) => `data: ${JSON.stringify({
    candidates: [{ content: { parts: [{ text }], role: 'model' }, ...(finish ? { finishReason: 'STOP' } : {}), index: 0 }],
    modelVersion: MODEL,
  })}\r\n\r\n`;
  const handler = (req, sock) => {
    const q = new URL(req.target, 'http://upstream').searchParams;
    if (q.get('alt') !== 'sse' && q.get('$alt') !== 'sse') return send(sock, 200, answer('not a stream'));
    sock.write('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n');
    const chunk = (s) => sock.write(`${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`);
    chunk(ev('Hello'));
    setTimeout(() => { chunk(ev(' world', true)); sock.write('0\r\n\r\n'); }, 1500);
  };
  await withRelay(async ({ up, serve }) => {
    for (const query of ['$alt=sse', 'al%74=%73se', 'alt=sse']) {
      const t0 = Date.now();
      const r = await fetch(`${serve.url}${STREAM}?${query}`, { method: 'POST', headers: { 'x-goog-api-key': TOKEN }, body: HELLO });
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-type'), /text\/event-stream/);
      const reader = r.body.getReader();
      const first = new TextDecoder().decode((await reader.read()).value);
      const firstMs = Date.now() - t0;
      assert.match(first, /^data: .*Hello/);
      assert.ok(firstMs < 1200, `${query}: the first event was held ${firstMs} ms (skiff took the SSE stream for the JSON array)`);
      let rest = '';
      for (;;) { const { value, done } = await reader.read(); if (done) break; rest += new TextDecoder().decode(value); }
      assert.match(rest, /world/);
    }
    assert.deepEqual(up.requests.map((q) => q.target), Array(3).fill(`${STREAM}?alt=sse`));
  }, { handler });
});

test('a query with TAB, FF, bytes >= 0x80, a #fragment or a bad alt is the client\'s 400, never an upstream call', async () => {
  await withRelay(async ({ up, serve }) => {
    const cases = [
      [post(`${GEN}?x=a\tb`), /0x09/],
      [post(`${GEN}?alt=json\x0c`), /0x0C/],
      [post(`${GEN}?x=caf\xc3\xa9`), /0xC3/],
      [post(`${GEN}?alt=sse#frag`), /fragment/],
      [post(`${STREAM}?alt=xml`), /must be sse .* or json/],
      [post(`${STREAM}?$alt=proto`), /\$alt must be sse/],
      [post(`${GEN}?al%zzt=sse`), /broken %-escape/],
      [get('/v1beta/models?pageSize=lots'), /pageSize must be a whole number/],
    ];
    for (const [req, says] of cases) {
      const r = await raw(serve.url, req);
      assert.equal(r.status, 400, `${JSON.stringify(req.split('\r\n')[0])}: ${r.head}\n${r.body}`);
      assert.match(r.head, /x-skiff-attempts: 0/i);
      const e = JSON.parse(r.body).error;
      assert.equal(e.status, 'INVALID_ARGUMENT');
      assert.match(e.message, says);
    }
    assert.equal(up.requests.length, 0, `went upstream: ${up.requests.map((q) => JSON.stringify(q.target))}`);
    const h = await health(serve);
    assert.equal(h.usable_keys, 2);
  });
});

test('".", "..", "%2e%2e" and other non-names are not model names: 400, never sent upstream with a key', async () => {
  await withRelay(async ({ up, serve }) => {
    for (const req of [get('/v1beta/models/..'), get('/v1beta/models/.'), get('/v1/models/%2e%2e'),
      post('/v1beta/models/..:generateContent'), post('/v1beta/models/%2E%2E:streamGenerateContent'),
      post('/v1beta/models/.hidden:countTokens'), post('/v1beta/models/:generateContent')]) {
      const r = await raw(serve.url, req);
      assert.equal(r.status, 400, `${JSON.stringify(req.split('\r\n')[0])}: ${r.body}`);
      const e = JSON.parse(r.body).error;
      assert.equal(e.status, 'INVALID_ARGUMENT');
      assert.match(e.message, /is not a model name/);
    }
    assert.equal(up.requests.length, 0, `went upstream: ${up.requests.map((q) => q.target)}`);
    // A real name still goes, as a path skiff built.
    const ok = await raw(serve.url, get(`/v1beta/models/${MODEL}`));
    assert.equal(ok.status, 200);
    assert.deepEqual(up.requests.map((q) => q.target), [`/v1beta/models/${MODEL}`]);
  });
});

test('models.list: pageSize and pageToken go, decoded and re-encoded; nothing else', async () => {
  await withRelay(async ({ up, serve }) => {
    const r = await fetch(`${serve.url}/v1beta/models/?page%53ize=%35&pageToken=Ch%2Bx/y&key=${TOKEN}&filter=z`);
    assert.equal(r.status, 200);
    assert.deepEqual(up.requests.map((q) => q.target), ['/v1beta/models?pageSize=5&pageToken=Ch%2Bx%2Fy']);
  });
});

// ---- 3. what comes back ----------------------------------------------------------------------

test('upstream response headers: an allowlist, pool keys starred out, Connection-named fields and NULs dropped', async () => {
  let n = 0;
  const handler = (req, sock) => {
    n++;
    if (n === 1)
      return send(sock, 200, answer('one'), [
        'X-Gemini-Service-Tier: standard', `Vary: Origin, X-Origin, ${KEYS[0]}`, 'Server-Timing: gfet4t7; dur=612',
        'Set-Cookie: NID=511=abc; path=/', `X-Debug-Key: ${KEYS[1]}`, 'Server: scaffolding on HTTPServer2',
        'X-Frame-Options: SAMEORIGIN', 'Alt-Svc: h3=":443"; ma=2592000', 'X-Skiff-Key: forged',
      ]);
    if (n === 2)
      return send(sock, 200, answer('two'), ['Server-Timing: gfet4t7; dur=9', 'Connection: keep-alive, Server-Timing, Vary', 'Vary: Origin', 'X-Gemini-Service-Tier: standard']);
    return send(sock, 200, answer('three'), ['X-Gemini-Service-Tier: std\0evil', 'Vary: Origin']);
  };
  await withRelay(async ({ serve }) => {
    const call = async () => {
      const r = await fetch(`${serve.url}${GEN}`, { method: 'POST', headers: { 'x-goog-api-key': TOKEN }, body: HELLO });
      assert.equal(r.status, 200);
      await r.text();
      return r.headers;
    };
    const h1 = await call();
    assert.equal(h1.get('x-gemini-service-tier'), 'standard');
    // skiff's own Server-Timing entry comes first; the upstream's follows it.
    assert.match(h1.get('server-timing'), /^skiff;dur=[\d.]+, gfet4t7; dur=612$/);
    assert.equal(h1.get('vary'), `Origin, X-Origin, ${'*'.repeat(KEYS[0].length)}`);
    for (const name of ['set-cookie', 'x-debug-key', 'x-frame-options', 'alt-svc'])
      assert.equal(h1.get(name), null, name);
    assert.notEqual(h1.get('x-skiff-key'), 'forged');
    assert.notEqual(h1.get('server'), 'scaffolding on HTTPServer2');
    for (const [name, value] of h1) for (const k of KEYS) assert.ok(!value.includes(k), `${name} carries a pool key`);

    const h2 = await call();
    assert.doesNotMatch(h2.get('server-timing'), /gfet4t7/, 'a field the upstream\'s Connection names went on');
    assert.equal(h2.get('vary'), null, 'a field the upstream\'s Connection names went on');
    assert.equal(h2.get('x-gemini-service-tier'), 'standard');

    // A NUL in a value: skiff's own client drops the field; the client never sees it.
    const r3 = await fetch(`${serve.url}${GEN}`, { method: 'POST', headers: { 'x-goog-api-key': TOKEN }, body: HELLO });
    await r3.text();
    assert.equal(r3.status, 200);
    assert.equal(r3.headers.get('x-gemini-service-tier'), null);
    assert.equal(r3.headers.get('vary'), 'Origin');
  }, { handler });
});

// ---- 4. a password in base_url or proxy is never printed -------------------------------------

async function closedPort() {
  const s = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

test('userinfo in base_url: not on stdout at start, not in a 502 body, not in the log', async () => {
  const port = await closedPort();
  const serve = await startServe(config(`http://skiffuser:b4seS3cret@127.0.0.1:${port}`));
  try {
    assert.ok(!serve.stdout.includes('b4seS3cret'), serve.stdout);
    assert.match(serve.stdout, new RegExp(`upstream http://\\*\\*\\*@127\\.0\\.0\\.1:${port}`));
    const r = await fetch(`${serve.url}${GEN}`, { method: 'POST', headers: { 'x-goog-api-key': TOKEN }, body: HELLO });
    const text = await r.text();
    assert.equal(r.status, 502, text);
    assert.ok(!text.includes('b4seS3cret') && !text.includes('skiffuser'), text);
    assert.match(text, /\*\*\*@127\.0\.0\.1/);
  } finally {
    await serve.stop();
  }
  assert.ok(!serve.stderr.includes('b4seS3cret'), 'the password reached the log');
});

test('userinfo in proxy: not in a 502 body, not on stdout, not in the log', async () => {
  const port = await closedPort();
  const serve = await startServe(config('https://generativelanguage.googleapis.com', '',
    `    proxy: http://proxyuser:pr0xyS3cret@127.0.0.1:${port}\n`));
  try {
    const r = await fetch(`${serve.url}${GEN}`, { method: 'POST', headers: { 'x-goog-api-key': TOKEN }, body: HELLO });
    const text = await r.text();
    assert.equal(r.status, 502, text);
    assert.ok(!text.includes('pr0xyS3cret'), text);
  } finally {
    await serve.stop();
  }
  assert.ok(!serve.stdout.includes('pr0xyS3cret'));
  assert.ok(!serve.stderr.includes('pr0xyS3cret'), 'the password reached the log');
});

test('skiff doctor prints neither the base_url\'s nor the proxy\'s password', async () => {
  const port = await closedPort();
  const dir = (await import('node:fs')).mkdtempSync(join((await import('node:os')).tmpdir(), 'skiff-allow-'));
  for (const [field, url] of [['base_url', `http://docuser:d0ctorS3cret@127.0.0.1:${port}`],
    ['proxy', `socks5h://docuser:d0ctorS3cret@127.0.0.1:${port}`]]) {
    const path = join(dir, `${field}.yaml`);
    const base = field === 'base_url' ? url : `http://127.0.0.1:${port}`;
    writeFileSync(path, `upstreams:\n  gemini:\n    base_url: ${base}\n    keys: [${KEYS[0]}]\n` +
      (field === 'proxy' ? `    proxy: ${url}\n` : '') + 'retry: {connect_timeout_ms: 2000}\n');
    const r = await run(['doctor', '--config', path]);
    assert.match(r.stdout, /config: .* loads/);
    assert.ok(!`${r.stdout}${r.stderr}`.includes('d0ctorS3cret'), `${field}:\n${r.stdout}${r.stderr}`);
    assert.ok(!`${r.stdout}${r.stderr}`.includes('docuser:'), `${field}:\n${r.stdout}${r.stderr}`);
  }
  await sleep(0);
});
