// Strict HTTP/1.1 framing (RFC 9112) and header names (RFC 9110) at skiff's door, open mode's
// Host/Origin rule, and the 404 for a path that is not UTF-8. Each scenario sends raw bytes
// to skiff serve in front of a raw upstream that records every request head it receives, so
// that "refused" also means "nothing reached the upstream". Runs over plain http and, as
// strict_http_tls, over https.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServe } from './lib.mjs';
import { rawRequest, startRawUpstream } from './rawhttp.mjs';

const KEY = 'AIzaSyStrictHttpKey00000000000000000001';
const TOKEN = 'sk-strict-http-0123456789abcdef';
const GEN = '/v1beta/models/gemini-2.5-flash:generateContent';
const BODY = JSON.stringify({ contents: [{ parts: [{ text: 'hi' }] }] });

let up, serve, host;

before(async () => {
  up = await startRawUpstream();
  serve = await startServe(`
tokens:
  - {name: tester, token: ${TOKEN}}
upstreams:
  gemini:
    base_url: ${up.url}
    keys: [${KEY}]
storage: {sqlite: ""}
workers: 1
`);
  host = new URL(serve.url).host;
});

after(async () => {
  await serve.stop();
  await up.close();
  assert.ok(!serve.stderr.includes(TOKEN) && !serve.stderr.includes(KEY), 'a secret reached the log');
});

// A generateContent request with the given head lines (each without CRLF) and body framing.
function gen(lines, body = `Content-Length: ${BODY.length}\r\n\r\n${BODY}`) {
  return `POST ${GEN} HTTP/1.1\r\n${lines.map((l) => `${l}\r\n`).join('')}${body}`;
}

// Sends bytes, expects status with a message matching re, and that the upstream got nothing.
async function refused(bytes, status, re) {
  const before = up.requests.length;
  const res = await rawRequest(serve.url, bytes);
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.body}`);
  const msg = JSON.parse(res.body).error.message;
  assert.match(msg, re);
  assert.equal(up.requests.length, before, 'the refused request reached the upstream');
  return res;
}

test('a well-formed chunked request with extensions and trailers still goes through', async () => {
  const half = BODY.length >> 1;
  const chunked = `Transfer-Encoding: chunked\r\n\r\n${half.toString(16)};name=value\r\n${BODY.slice(0, half)}\r\n` +
    `${(BODY.length - half).toString(16)}\r\n${BODY.slice(half)}\r\n0\r\nX-Trailer: yes\r\n\r\n`;
  const res = await rawRequest(serve.url, gen([`Host: ${host}`, `x-goog-api-key: ${TOKEN}`], chunked));
  assert.equal(res.status, 200, res.body);
  assert.equal(JSON.parse(res.body).candidates[0].content.parts[0].text, 'hi');
});

// Sends bytes one write per piece of `step` bytes, a little apart, so skiff reads them in
// pieces: the scanners and the head/body seam must not depend on where reads split.
function trickle(bytes, step) {
  const { hostname, port } = new URL(serve.url);
  return new Promise(async (resolve) => {
    const net = await import('node:net');
    const sock = net.connect(Number(port), hostname);
    sock.setNoDelay(true);
    let buf = '';
    sock.on('data', (d) => { buf += d; if (/\r\n\r\n[\s\S]*\}\n?$/.test(buf)) sock.destroy(); });
    sock.on('close', () => resolve(buf));
    sock.on('error', () => {});
    sock.on('connect', async () => {
      for (let i = 0; i < bytes.length && !sock.destroyed; i += step) {
        sock.write(Buffer.from(bytes.slice(i, i + step), 'latin1'));
        await new Promise((r) => setTimeout(r, 2));
      }
    });
  });
}

test('a request read in pieces of 1, 2, 3 or 7 bytes parses the same, and is refused the same', async () => {
  const n = BODY.length.toString(16);
  const good = gen([`Host: ${host}`, `x-goog-api-key: ${TOKEN}`, 'Connection: close'],
    `Transfer-Encoding: chunked\r\n\r\n${n};e=1\r\n${BODY}\r\n0\r\nX-T: 1\r\n\r\n`);
  const bad = gen([`Host: ${host}`, `x-goog-api-key: ${TOKEN}`],
    `Transfer-Encoding: chunked\r\n\r\n${n}\r\n${BODY}X\r\n0\r\n\r\n`);
  for (const step of [1, 2, 3, 7]) {
    const ok = await trickle(good, step);
    assert.match(ok, /^HTTP\/1.1 200 OK/, `step ${step}: ${ok.slice(0, 300)}`);
    const no = await trickle(bad, step);
    assert.match(no, /^HTTP\/1.1 400 /, `step ${step}: ${no.slice(0, 300)}`);
    assert.match(no, /not followed by CRLF/);
  }
});

test('two pipelined requests are both answered, in order', async () => {
  const one = gen([`Host: ${host}`, `x-goog-api-key: ${TOKEN}`, 'x-request-id: first']);
  const two = gen([`Host: ${host}`, `x-goog-api-key: ${TOKEN}`, 'x-request-id: second', 'Connection: close']);
  const { hostname, port } = new URL(serve.url);
  const net = await import('node:net');
  const got = await new Promise((resolve) => {
    const sock = net.connect(Number(port), hostname, () => sock.write(one + two));
    let buf = '';
    sock.on('data', (d) => { buf += d; });
    sock.on('close', () => resolve(buf));
  });
  const ids = [...got.matchAll(/x-request-id: (\w+)/g)].map((m) => m[1]);
  assert.deepEqual(ids, ['first', 'second']);
  assert.equal((got.match(/HTTP\/1.1 200 OK/g) || []).length, 2);
});

test('a header name with a space before its colon is a 400 (Transfer-Encoding, Content-Length, Host)', async () => {
  const re = /header name is not a token/;
  await refused(gen([`Host: ${host}`, `x-goog-api-key: ${TOKEN}`, 'Transfer-Encoding : chunked']), 400, re);
  await refused(gen([`Host: ${host}`, `x-goog-api-key: ${TOKEN}`, 'Content-Length : 5']), 400, re);
  await refused(gen([`Host: ${host}`, `Host : evil.example`, `x-goog-api-key: ${TOKEN}`]), 400, re);
  await refused(gen([`Host: ${host}`, `x-goog-api-key: ${TOKEN}`, 'X-Tab\t: 1']), 400, re);
});

test("the client's token in `Authorization : Bearer` never reaches the upstream", async () => {
  const res = await rawRequest(serve.url, gen([`Host: ${host}`, `x-goog-api-key: ${TOKEN}`, `Authorization : Bearer ${TOKEN}`]));
  assert.equal(res.status, 400, res.body);
  for (const r of up.requests) assert.ok(!r.head.includes(TOKEN), `the upstream received the client's token:\n${r.head}`);
  // The same request with a well-formed header goes through, without the token.
  const ok = await rawRequest(serve.url, gen([`Host: ${host}`, `Authorization: Bearer ${TOKEN}`]));
  assert.equal(ok.status, 200, ok.body);
  assert.ok(up.requests.length > 0);
  for (const r of up.requests) assert.ok(!r.head.includes(TOKEN), `the upstream received the client's token:\n${r.head}`);
});

test('a folded header line (obs-fold) is a 400', async () => {
  await refused(gen([`Host: ${host}`, `x-goog-api-key: ${TOKEN}`, 'X-Long: one', ' two']), 400, /obs-fold/);
  await refused(gen([`Host: ${host}`, `x-goog-api-key: ${TOKEN}`, 'X-Long: one', '\ttwo']), 400, /obs-fold/);
});

test('a control character in a header value is a 400', async () => {
  await refused(gen([`Host: ${host}`, `x-goog-api-key: ${TOKEN}`, 'X-Nul: a\x00b']), 400, /control character/);
});

test('chunked framing: data not followed by CRLF, bare LF in an extension, a space after the size are 400s', async () => {
  const hdr = [`Host: ${host}`, `x-goog-api-key: ${TOKEN}`];
  const n = BODY.length.toString(16);
  await refused(gen(hdr, `Transfer-Encoding: chunked\r\n\r\n${n}\r\n${BODY}XX0\r\n\r\n`), 400, /not followed by CRLF/);
  await refused(gen(hdr, `Transfer-Encoding: chunked\r\n\r\n${n};ext\n\r\n${BODY}\r\n0\r\n\r\n`), 400, /bare LF in a chunk extension/);
  await refused(gen(hdr, `Transfer-Encoding: chunked\r\n\r\n${n} \r\n${BODY}\r\n0\r\n\r\n`), 400, /space after the size/);
  await refused(gen(hdr, `Transfer-Encoding: chunked\r\n\r\n${n}\r\n${BODY}\r\n0\r\n\r\r`), 400, /not followed by LF/);
});

test('HTTP/1.1 without a Host, or with two, is a 400', async () => {
  await refused(gen([`x-goog-api-key: ${TOKEN}`]), 400, /needs a Host header/);
  await refused(gen([`Host: ${host}`, `Host: ${host}`, `x-goog-api-key: ${TOKEN}`]), 400, /more than one Host/);
});

test('HTTP/2.0 and HTTP/9.9 requests are 505, HTTP/1.0 is served', async () => {
  for (const v of ['2.0', '9.9', '0.9']) {
    await refused(`GET /healthz HTTP/${v}\r\nHost: ${host}\r\n\r\n`, 505, /skiff speaks HTTP\/1.1/);
  }
  const res = await rawRequest(serve.url, `GET /healthz HTTP/1.0\r\n\r\n`);
  assert.equal(res.status, 200, res.body);
});

test('Content-Length with Transfer-Encoding is a 400; a coding other than chunked is a 501', async () => {
  const hdr = [`Host: ${host}`, `x-goog-api-key: ${TOKEN}`];
  await refused(gen([...hdr, 'Transfer-Encoding: chunked'], `Content-Length: 4\r\n\r\n0\r\n\r\n`), 400, /content-length/i);
  await refused(gen([...hdr, 'Content-Length: 4'], `Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n`), 400, /content-length/i);
  await refused(gen([...hdr, 'Transfer-Encoding: gzip, chunked'], `\r\n0\r\n\r\n`), 501, /no transfer coding but chunked/);
});

test('a head over 64 KiB is a 431, a request target over it a 414', async () => {
  const big = 'a'.repeat(70 * 1024);
  await refused(gen([`Host: ${host}`, `x-goog-api-key: ${TOKEN}`, `X-Big: ${big}`]), 431, /headers are too large/);
  // Whitespace http-parser skips (it never reaches skiff's head buffer) counts as well.
  await refused(gen([`Host: ${host}`, `x-goog-api-key: ${TOKEN}`, `X-Pad:${' '.repeat(90 * 1024)}v`]), 431, /headers are too large/);
  const many = Array.from({ length: 2000 }, (_, i) => `X-H${i}: ${'b'.repeat(30)}`);
  await refused(gen([`Host: ${host}`, ...many]), 431, /too (large|many)/);
  await refused(`GET /v1beta/models?x=${big} HTTP/1.1\r\nHost: ${host}\r\n\r\n`, 414, /request line is too long/);
});

test('a 404 for a path that is not UTF-8 keeps its message, the bytes escaped', async () => {
  const res = await rawRequest(serve.url, `GET /v1beta/\xff\xfe-nope HTTP/1.1\r\nHost: ${host}\r\nx-goog-api-key: ${TOKEN}\r\n\r\n`);
  assert.equal(res.status, 404, res.body);
  const msg = JSON.parse(res.body).error.message;
  assert.match(msg, /no route for \/v1beta\/%FF%FE-nope/);
});

test('a request without a token is answered 401 at its head: the body is never awaited', async () => {
  // The head promises a body that never comes; the 401 arrives anyway, and the connection closes.
  const res = await rawRequest(serve.url, `POST ${GEN} HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 100000\r\n\r\n{`, { timeoutMs: 5000 });
  assert.equal(res.status, 401, res.body);
  assert.match(JSON.parse(res.body).error.message, /needs a client token/);
  assert.equal(res.headers.connection, 'close');
});

test('a protocol upgrade anywhere but the Live API paths is a 400 naming them, before the token is read', async () => {
  const up1 = (path, extra = []) => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\n` +
    `Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n` +
    `${extra.map((l) => `${l}\r\n`).join('')}\r\n`;
  for (const path of ['/v1beta/models', '/ws/google.ai.generativelanguage.v1beta.GenerativeService.StreamGenerateContent', '/healthz']) {
    const res = await refused(up1(path), 400, /protocol upgrades are served only on the Live API paths: \/ws\/google\.ai\.generativelanguage\.v1beta\.GenerativeService\.BidiGenerateContent/);
    assert.equal(res.headers.connection, 'close');
  }
  // The OpenAI door answers in its own form.
  const res = await rawRequest(serve.url, up1('/openai/v1/chat/completions', [`Authorization: Bearer ${TOKEN}`]));
  assert.equal(res.status, 400, res.body);
  assert.match(JSON.parse(res.body).error.message, /protocol upgrades are served only on the Live API paths/);
  // Upgrade without Connection: upgrade asks for nothing: the request is served as plain HTTP.
  const plain = await rawRequest(serve.url, gen([`Host: ${host}`, `x-goog-api-key: ${TOKEN}`, 'Upgrade: websocket', 'Connection: close']));
  assert.equal(plain.status, 200, plain.body);
});

test('an upgrade request with a body is a 400', async () => {
  await refused(gen([`Host: ${host}`, `x-goog-api-key: ${TOKEN}`, 'Connection: upgrade', 'Upgrade: websocket']), 400,
    /a protocol upgrade request carries no body/);
});

// ---- open mode (no tokens) --------------------------------------------------------------------

test('open mode refuses a Host or an Origin that is not loopback, and says how to add a token', async () => {
  const open = await startServe(`
upstreams:
  gemini:
    base_url: ${up.url}
    keys: [${KEY}]
storage: {sqlite: ""}
workers: 1
`);
  try {
    const port = new URL(open.url).port;
    const before = up.requests.length;
    for (const h of ['evil.example', `evil.example:${port}`, '127.0.0.1.evil.example', 'localhost.evil.example', '[::2]', '10.0.0.1']) {
      const res = await rawRequest(open.url, gen([`Host: ${h}`]));
      assert.equal(res.status, 403, `Host ${h}: ${res.body}`);
      const msg = JSON.parse(res.body).error.message;
      assert.match(msg, /open mode/);
      assert.match(msg, /`tokens:` in the config/);
      assert.match(msg, /SKIFF_TOKENS/);
    }
    for (const o of ['http://evil.example', 'null', `http://evil.example:${port}`]) {
      const res = await rawRequest(open.url, gen([`Host: 127.0.0.1:${port}`, `Origin: ${o}`]));
      assert.equal(res.status, 403, `Origin ${o}: ${res.body}`);
      assert.match(JSON.parse(res.body).error.message, /DNS rebinding.*SKIFF_TOKENS/);
    }
    assert.equal(up.requests.length, before, 'a refused request reached the upstream');
    for (const h of [`127.0.0.1:${port}`, `localhost:${port}`, 'localhost', '127.1.2.3', `[::1]:${port}`]) {
      const res = await rawRequest(open.url, gen([`Host: ${h}`, `Origin: http://localhost:3000`]));
      assert.equal(res.status, 200, `Host ${h}: ${res.body}`);
    }
    const health = await fetch(`${open.url}/healthz`);
    assert.equal(health.status, 200);
  } finally {
    await open.stop();
  }
});
