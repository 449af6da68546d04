// The upstream transport: skiff serve in front of a raw TCP upstream written here with node's
// net module, so that each scenario controls the exact bytes the upstream sends, how they are
// split and when they come. The client is plain fetch or node's http. By default this runs over
// skiff's own HTTP/1.1 client (relay/h1client.c), the only one since libcurl went (these
// cases ran over both until then); with SKIFF_TEST_UPSTREAM=tls over https, through a TLS terminator in front of the upstream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import http from 'node:http';
import { createHash } from 'node:crypto';
import { startServe, sleep, TLS_UPSTREAM } from './lib.mjs';

const KEY = 'AIzaSyUpstreamTransportKey000000000000001';
const TOKEN = 'sk-upstream-test-0123456789abcdef';
const MODEL = 'gemini-2.5-flash';
const GEN = `/v1beta/models/${MODEL}:generateContent`;
const STREAM = `/v1beta/models/${MODEL}:streamGenerateContent?alt=sse`;

// ---- the raw upstream ------------------------------------------------------------------------

// A TCP server that parses requests (head, then a Content-Length body) and hands each to
// up.handler(req, sock). It counts connections and records every request as it came.
async function startUpstream(handler) {
  const up = { handler, connections: 0, requests: [], sockets: new Set(), closes: [] };
  const server = net.createServer((sock) => {
    const conn = { id: ++up.connections, n: 0, sock, closedAt: 0 };
    up.sockets.add(sock);
    sock.setNoDelay(true); // each write goes out as its own segment: the splits are real
    sock.on('error', () => {});
    sock.on('close', () => { conn.closedAt = Date.now(); up.sockets.delete(sock); up.closes.push(conn); });
    let buf = Buffer.alloc(0);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (!sock.destroyed) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        const lines = head.split('\r\n');
        const [method, target, version] = lines[0].split(' ');
        const headers = lines.slice(1).map((l) => {
          const c = l.indexOf(':');
          return [l.slice(0, c).toLowerCase(), l.slice(c + 1).trim()];
        });
        const cl = headers.find(([n]) => n === 'content-length');
        const len = cl ? Number(cl[1]) : 0;
        if (buf.length < end + 4 + len) return;
        const body = Buffer.from(buf.subarray(end + 4, end + 4 + len));
        buf = buf.subarray(end + 4 + len);
        const req = {
          method, target, version, head, headers, body, conn, n: ++conn.n,
          all: (name) => headers.filter(([n]) => n === name).map(([, v]) => v),
        };
        up.requests.push(req);
        up.handler(req, sock);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  up.port = server.address().port;
  up.url = `http://127.0.0.1:${up.port}`;
  up.close = () => new Promise((r) => {
    for (const s of up.sockets) s.destroy();
    server.close(r);
  });
  return up;
}

// skiff opens a connection to the upstream at start (no cold first request): wait until it
// is there, so that the connections a test counts are the requests' doing.
async function warmedUp(connections) {
  const t0 = Date.now();
  while (connections() < 1 && Date.now() - t0 < 3000) await sleep(10);
  await sleep(TLS_UPSTREAM ? 100 : 20); // and through its TLS handshake
}

// A realistic generateContent answer, as Google formats it (two-space indented JSON).
function answer(text, id = 'aBcDeFgHiJkLmNoP') {
  return `${JSON.stringify({
    candidates: [{ content: { parts: [{ text }], role: 'model' }, finishReason: 'STOP', index: 0 }],
    usageMetadata: {
      promptTokenCount: 9, candidatesTokenCount: 61, totalTokenCount: 70,
      promptTokensDetails: [{ modality: 'TEXT', tokenCount: 9 }],
    },
    modelVersion: MODEL,
    responseId: id,
  }, null, 2)}\n`;
}

const LONG_TEXT = 'Boats float because they displace a weight of water equal to their own weight. ' +
  'Archimedes noticed this — « Eurêka ! » — and 船 still float today 🌊⛵. The hull spreads the load ' +
  'over a large volume, so the average density of the boat, air included, stays below that of water. '
    .repeat(4) + 'That is all.';

function head(status, headers) {
  const reason = { 100: 'Continue', 200: 'OK' }[status] ?? 'Whatever';
  return `HTTP/1.1 ${status} ${reason}\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n`;
}

// A keep-alive answer with a Content-Length.
function reply(sock, body = answer('Hello there! How can I help you today?'), extra = []) {
  const b = Buffer.from(body);
  sock.write(Buffer.concat([
    Buffer.from(head(200, ['Content-Type: application/json; charset=UTF-8', 'Vary: Origin', ...extra, `Content-Length: ${b.length}`])),
    b,
  ]));
}

function sse(obj) {
  return `data: ${JSON.stringify(obj)}\r\n\r\n`;
}

function chunk(data) {
  const b = Buffer.from(data);
  return Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')]);
}

// ---- skiff in front of it ---------------------------------------------------------------------

function config(up, { attempts = 3, deadline = 8000, extra = '' } = {}) {
  return `
tokens:
  - {name: tester, token: ${TOKEN}}
upstreams:
  gemini:
    base_url: ${up.url}
    keys: [${KEY}]
retry: {max_attempts: ${attempts}, base_delay_ms: 10, max_delay_ms: 40, deadline_ms: ${deadline}}
storage: {sqlite: ""}
workers: 1
${extra}`;
}

// Starts an upstream with handler and a skiff in front of it; stops both at the end (skiff must
// exit cleanly) and checks that neither the key nor the token ever reached skiff's logs.
async function withRelay(handler, opts, fn) {
  const up = await startUpstream(handler);
  const serve = await startServe(config(up, opts));
  try {
    await warmedUp(() => up.connections);
    await fn({ up, serve });
  } finally {
    await serve.stop();
    await up.close();
    for (const s of [KEY, TOKEN]) {
      assert.ok(!serve.stderr.includes(s) && !serve.stdout.includes(s), 'a secret appeared in the logs');
    }
  }
}

const hello = { contents: [{ role: 'user', parts: [{ text: 'Say hello' }] }] };

function post(serve, path = GEN, { body = hello, headers = {} } = {}) {
  return fetch(`${serve.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-goog-api-key': TOKEN, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

// A request that must succeed with the upstream's body, unchanged, on the first attempt.
async function expectOk(serve, body) {
  const r = await post(serve);
  const text = await r.text();
  assert.equal(r.status, 200, `expected 200, got ${r.status}: ${text.slice(0, 300)}`);
  assert.equal(r.headers.get('x-skiff-attempts'), '1');
  if (body !== undefined) assert.equal(text, body);
  return r;
}

// ---- 1. the request as the upstream sees it ---------------------------------------------------

test('the upstream receives the request as sent: method, path, query without key=, host, length, body, pool key', async () => {
  // Written by hand: spacing, escapes and non-ASCII text must arrive byte for byte.
  const body = '{"contents": [{"role": "user", "parts": [{"text": "Décris la mer en 3 mots \\"exactement\\" — 海 🌊\\n"}]}],\n' +
    '  "generationConfig": {"temperature": 0.3, "maxOutputTokens": 64}}';
  const res = answer('Bleue, vaste, profonde.');
  await withRelay((req, sock) => reply(sock, res), {}, async ({ up, serve }) => {
    const u = serve.url;
    const sent = [
      // The token as ?key= between other parameters; then as Bearer; then as x-goog-api-key.
      fetch(`${u}${GEN}?prettyPrint=false&key=${TOKEN}&alt=json`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-goog-api-client': 'genai-js/1.30.0' }, body }),
      fetch(`${u}${GEN}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body }),
      fetch(`${u}${GEN}?alt=json`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-goog-api-key': TOKEN }, body }),
    ];
    for (const p of sent) {
      const r = await p;
      assert.equal(r.status, 200);
      assert.equal(await r.text(), res);
    }
    // Only allowlisted parameters go (relay/uprequest.h): prettyPrint stays behind.
    assert.deepEqual(up.requests.map((q) => q.target).sort(), [GEN, `${GEN}?alt=json`, `${GEN}?alt=json`]);
    for (const q of up.requests) {
      assert.equal(q.method, 'POST');
      assert.equal(q.version, 'HTTP/1.1');
      if (TLS_UPSTREAM) assert.match(q.all('host').join(), /^localhost:\d+$/);
      else assert.deepEqual(q.all('host'), [`127.0.0.1:${up.port}`]);
      assert.deepEqual(q.all('content-length'), [String(Buffer.byteLength(body))]);
      assert.deepEqual(q.all('transfer-encoding'), []);
      assert.ok(q.body.equals(Buffer.from(body)), 'the body did not go upstream byte for byte');
      assert.deepEqual(q.all('x-goog-api-key'), [KEY]);
      assert.deepEqual(q.all('authorization'), []);
      assert.deepEqual(q.all('content-type'), ['application/json']);
      assert.ok(!q.head.includes(TOKEN), 'the client token reached the upstream');
      assert.ok(!/[?&]key=/.test(q.target));
    }
    assert.deepEqual(up.requests.flatMap((q) => q.all('x-goog-api-client')), ['genai-js/1.30.0']);
  });
});

// ---- 2, 3. response framing --------------------------------------------------------------------

test('a chunked answer written one byte at a time, or in uneven pieces, arrives complete and exact', async () => {
  const body = answer(LONG_TEXT, 'byteByByte01');
  const b = Buffer.from(body);
  // Chunks of uneven sizes (some hex sizes with letters, one in upper case), split inside
  // multi-byte UTF-8 characters too.
  const cuts = [1, 2, 13, 31, 200, 255, 511];
  const parts = [];
  let at = 0;
  for (const n of cuts) { parts.push(b.subarray(at, at + n)); at += n; }
  parts.push(b.subarray(at));
  const framed = Buffer.concat([
    Buffer.from(head(200, ['Content-Type: application/json; charset=UTF-8', 'Vary: Origin', 'Transfer-Encoding: chunked'])),
    ...parts.map((p, i) => (i === 4
      ? Buffer.concat([Buffer.from(`${p.length.toString(16).toUpperCase()}\r\n`), p, Buffer.from('\r\n')])
      : chunk(p))),
    Buffer.from('0\r\n\r\n'),
  ]);
  // The first answer goes one byte per write; the next ones in pieces of 1 to 60 bytes, so
  // that a read ends anywhere: inside the head, a chunk-size line, a chunk's CRLF, or with the
  // end of the head and the start of the body together.
  let answers = 0, firstWrites = 0;
  let seed = 7;
  const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed; };
  await withRelay(async (req, sock) => {
    const byByte = answers++ === 0;
    let writes = 0;
    for (let i = 0; i < framed.length && !sock.destroyed; writes++) {
      const n = byByte ? 1 : 1 + (rnd() % 60);
      sock.write(framed.subarray(i, i + n));
      if (byByte) firstWrites++;
      i += n;
      if (writes % 50 === 49) await sleep(2); else await new Promise((r) => setImmediate(r));
    }
  }, {}, async ({ serve }) => {
    const r = await expectOk(serve, body);
    assert.match(r.headers.get('content-type'), /application\/json/);
    assert.equal(firstWrites, framed.length);
    // And the connection is still good for the next answers.
    for (let i = 0; i < 8; i++) await expectOk(serve, body);
  });
});

test('an answer without Content-Length that ends when the upstream closes arrives exact', async () => {
  const body = answer(LONG_TEXT, 'untilClose01');
  const b = Buffer.from(body);
  await withRelay(async (req, sock) => {
    sock.write(head(200, ['Content-Type: application/json; charset=UTF-8', 'Connection: close']));
    await sleep(10);
    sock.write(b.subarray(0, 100));
    await sleep(10);
    sock.write(b.subarray(100, 101));
    await sleep(10);
    sock.end(b.subarray(101));
  }, {}, async ({ up, serve }) => {
    await expectOk(serve, body);
    await expectOk(serve, body);
    assert.equal(up.connections, 2, 'a connection that ended the answer by closing was used again');
  });
});

// ---- 4, 5. keep-alive ---------------------------------------------------------------------------

test('keep-alive: 20 sequential requests use at most 2 upstream connections', async () => {
  await withRelay((req, sock) => reply(sock), {}, async ({ up, serve }) => {
    for (let i = 0; i < 20; i++) await expectOk(serve);
    assert.equal(up.requests.length, 20);
    assert.ok(up.connections <= 2, `${up.connections} upstream connections for 20 sequential requests`);
  });
});

test('stale keep-alive: an upstream that closes each connection 50 ms after answering costs no failure and no retry', async () => {
  await withRelay((req, sock) => {
    reply(sock);
    setTimeout(() => sock.end(), 50);
  }, {}, async ({ up, serve }) => {
    for (let i = 0; i < 10; i++) {
      await expectOk(serve);
      await sleep(100);
    }
    assert.equal(up.requests.length, 10);
    assert.ok(up.connections >= 10);
  });
});

test('a kept connection that dies after reading the request: the request is sent again only as a counted attempt (reliability issue, item 7)', async () => {
  // Each connection answers its first request, then dies on reading the second: the upstream
  // has seen that request, so a re-send is a second delivery of the POST and must show in
  // x-skiff-attempts, never happen silently.
  await withRelay((req, sock) => {
    if (req.n === 1) reply(sock);
    else sock.destroy();
  }, {}, async ({ up, serve }) => {
    let attempts = 0, twice = 0;
    for (let i = 0; i < 10; i++) {
      const r = await post(serve);
      const text = await r.text();
      assert.equal(r.status, 200, text.slice(0, 300));
      const n = Number(r.headers.get('x-skiff-attempts'));
      attempts += n;
      if (n > 1) twice++;
      await sleep(20);
    }
    const reused = up.requests.filter((q) => q.n > 1).length;
    assert.ok(reused >= 5, `only ${reused} requests went out on a reused connection: the scenario did not happen`);
    // Every request the upstream received is an attempt the client was told about.
    assert.equal(up.requests.length, attempts, `the upstream saw ${up.requests.length} requests, the client was told of ${attempts} attempts`);
    assert.equal(twice, reused);
  });
});

test('a kept connection the upstream closed while idle is never written to: no request is lost or counted twice', async () => {
  // The upstream closes (FIN) or resets each connection 30 ms after answering; skiff
  // notices while the connection is idle, or at the latest when it picks it.
  await withRelay((req, sock) => {
    reply(sock);
    setTimeout(() => (req.conn.id % 2 ? sock.end() : sock.resetAndDestroy()), 30);
  }, {}, async ({ up, serve }) => {
    for (let i = 0; i < 10; i++) {
      await expectOk(serve);
      await sleep(TLS_UPSTREAM ? 200 : 60); // the close takes one more hop over TLS
    }
    assert.equal(up.requests.length, 10);
    assert.ok(up.requests.every((q) => q.n === 1), 'a request went out on a connection the upstream had closed');
  });
});

// ---- 6. garbage -----------------------------------------------------------------------------------

const garbage = {
  'no status line': (sock) => sock.end('<html>bad gateway</html>'),
  'no status line, connection left open': (sock) => sock.write('<html>bad gateway</html>\n'),
  'a 70 KiB header': (sock) => {
    const body = answer('big header');
    sock.write(`${head(200, ['Content-Type: application/json; charset=UTF-8', `X-Padding: ${'p'.repeat(70 * 1024)}`, `Content-Length: ${Buffer.byteLength(body)}`])}${body}`);
  },
  'a body cut short (Content-Length: 100, 10 bytes, close)': (sock) => {
    sock.end(`${head(200, ['Content-Type: application/json; charset=UTF-8', 'Content-Length: 100'])}{"candidat`);
  },
  'a malformed chunk size': (sock) => {
    const body = answer('chunky');
    sock.write(`${head(200, ['Content-Type: application/json; charset=UTF-8', 'Transfer-Encoding: chunked'])}1a\r\n${body.slice(0, 26)}\r\nzz\r\n${body.slice(26)}\r\n0\r\n\r\n`);
  },
};

for (const [name, send] of Object.entries(garbage)) {
  test(`garbage from the upstream (${name}): a Google-format 5xx at once, and the next request works`, async () => {
    let bad = true;
    await withRelay((req, sock) => {
      if (bad) { bad = false; send(sock); } else reply(sock);
    }, { attempts: 1 }, async ({ serve }) => {
      const t0 = Date.now();
      const r = await post(serve, GEN, { headers: { 'x-skiff-deadline-ms': '4000' } });
      const dt = Date.now() - t0;
      const text = await r.text();
      assert.ok(r.status >= 500 && r.status < 600, `status ${r.status}: ${text.slice(0, 300)}`);
      assert.match(r.headers.get('content-type'), /application\/json/);
      const e = JSON.parse(text);
      assert.deepEqual(Object.keys(e), ['error']);
      assert.equal(e.error.code, r.status);
      assert.equal(typeof e.error.message, 'string');
      assert.ok(e.error.message.length > 0);
      assert.equal(typeof e.error.status, 'string');
      assert.ok(e.error.status.length > 0);
      // Found out from the bytes, not by waiting for the deadline.
      assert.notEqual(e.error.status, 'DEADLINE_EXCEEDED', e.error.message);
      assert.ok(dt < 4000, `took ${dt} ms`);
      assert.equal(r.headers.get('x-skiff-attempts'), '1');
      assert.ok(!text.includes(KEY));
      await expectOk(serve);
    });
  });
}

// ---- 7. interim answers -----------------------------------------------------------------------

test('HTTP/1.1 100 Continue before the real answer: the client gets the 200 and its body', async () => {
  const body = answer('After the interim answer.');
  const b = Buffer.from(body);
  const final = Buffer.concat([Buffer.from(head(200, ['Content-Type: application/json; charset=UTF-8', `Content-Length: ${b.length}`])), b]);
  await withRelay(async (req, sock) => {
    if (req.n % 2 === 1) {
      sock.write(Buffer.concat([Buffer.from(head(100, [])), final])); // in one write
    } else {
      sock.write(head(100, []));
      await sleep(30);
      sock.write(final);
    }
  }, {}, async ({ serve }) => {
    for (let i = 0; i < 4; i++) {
      const r = await expectOk(serve, body);
      assert.match(r.headers.get('content-type'), /application\/json/);
    }
  });
});

// ---- 8. backpressure ------------------------------------------------------------------------------

test('backpressure: a 32 MB stream to a client that stops reading for 2 s arrives whole, in order, once', async () => {
  // Far more than the socket buffers on the way hold (kernel autotuning lets loopback
  // connections buffer ~12 MB end to end here), so the upstream must really be paused.
  const N = 30000;
  const words = ['tide', 'keel', 'mast', 'helm', 'sail', 'port', 'reef', 'gale', 'knot', 'wake', 'buoy', 'hull', 'bow', 'aft'];
  let seed = 12345;
  const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed; };
  const events = [];
  for (let i = 0; i < N; i++) {
    let text = `[#${String(i).padStart(6, '0')}] `;
    while (text.length < 1000) text += `${words[rnd() % words.length]}${rnd() % 1000} `;
    events.push(sse({ candidates: [{ content: { parts: [{ text }], role: 'model' }, index: 0 }] }));
  }
  events.push(sse({
    candidates: [{ content: { parts: [{ text: '' }], role: 'model' }, finishReason: 'STOP', index: 0 }],
    usageMetadata: { promptTokenCount: 4, candidatesTokenCount: 1500000, totalTokenCount: 1500004 },
    modelVersion: MODEL,
  }));
  const all = Buffer.from(events.join(''));
  const total = all.length;
  assert.ok(total > 32e6);

  const srv = { sent: 0 };
  await withRelay(async (req, sock) => {
    sock.write(head(200, ['Content-Type: text/event-stream', 'Transfer-Encoding: chunked']));
    for (const ev of events) {
      if (sock.destroyed) return;
      const ok = sock.write(chunk(ev));
      srv.sent += Buffer.byteLength(ev);
      if (!ok) {
        await new Promise((r) => {
          const done = () => { sock.off('drain', done); sock.off('close', done); r(); };
          sock.on('drain', done);
          sock.on('close', done);
        });
      }
    }
    sock.write('0\r\n\r\n');
  }, {}, async ({ serve }) => {
    const u = new URL(serve.url);
    const got = await new Promise((resolve, reject) => {
      const st = { chunks: [], bytes: 0, pausedAt: 0, resumedAt: 0, sentAtPause: 0, sentAtResume: 0, sentMidPause: 0 };
      const req = http.request({
        host: u.hostname, port: Number(u.port), path: STREAM, method: 'POST', agent: false,
        headers: { 'content-type': 'application/json', 'x-goog-api-key': TOKEN },
      }, (res) => {
        st.res = res;
        res.on('data', (d) => {
          st.chunks.push(d);
          st.bytes += d.length;
          if (!st.pausedAt && st.bytes >= 8192) {
            res.pause();
            st.pausedAt = Date.now();
            st.sentAtPause = srv.sent;
            setTimeout(() => { st.sentMidPause = srv.sent; }, 1000);
            setTimeout(() => {
              st.sentAtResume = srv.sent;
              st.resumedAt = Date.now();
              res.resume();
            }, 2000);
          }
        });
        res.on('end', () => resolve(st));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'Tell me a very long story about boats' }] }] }));
    });
    assert.equal(got.res.statusCode, 200);
    assert.match(got.res.headers['content-type'], /text\/event-stream/);
    assert.equal(got.res.headers['x-skiff-attempts'], '1');
    const body = Buffer.concat(got.chunks);
    // The pause really happened, and it held the upstream back: while the client was not
    // reading, the upstream could not send everything (skiff paused it rather than reading
    // it all into memory); the rest came through after the client resumed.
    assert.ok(got.pausedAt && got.resumedAt - got.pausedAt >= 1900, 'the client never paused');
    assert.ok(got.sentAtResume < total, `the upstream sent all ${total} bytes while the client was paused: nothing held it ` +
      `back (sent ${got.sentAtPause} when the client paused, ${got.sentMidPause} a second later)`);
    // Exactly the upstream's bytes: same length, same hash, every event once and in order.
    const seq = [...body.toString().matchAll(/\[#(\d{6})\]/g)].map((m) => Number(m[1]));
    const firstBad = seq.findIndex((v, i) => v !== i);
    assert.equal(firstBad, -1, `event ${firstBad} is #${seq[firstBad]} (previous #${seq[firstBad - 1]})`);
    assert.equal(seq.length, N);
    assert.equal(body.length, total);
    assert.equal(createHash('sha256').update(body).digest('hex'), createHash('sha256').update(all).digest('hex'));
  });
});

// ---- 9. client abort ---------------------------------------------------------------------------------

test('the client going away mid-stream closes the upstream connection within a second', async () => {
  let streamConn = null;
  await withRelay((req, sock) => {
    if (!req.target.includes('streamGenerateContent')) { reply(sock); return; }
    streamConn = req.conn;
    sock.write(head(200, ['Content-Type: text/event-stream', 'Transfer-Encoding: chunked']));
    // One event now, then one every 3 s: the upstream is quiet when the client leaves, so
    // only skiff closing the connection can make it close within the second.
    let i = 0;
    const event = () => {
      if (!sock.destroyed) sock.write(chunk(sse({ candidates: [{ content: { parts: [{ text: `part ${i++} of a long story ` }], role: 'model' }, index: 0 }] })));
    };
    event();
    const t = setInterval(event, 3000);
    sock.on('close', () => clearInterval(t));
  }, {}, async ({ serve }) => {
    const u = new URL(serve.url);
    const abortedAt = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no stream data within 5 s')), 5000);
      const req = http.request({
        host: u.hostname, port: Number(u.port), path: STREAM, method: 'POST', agent: false,
        headers: { 'content-type': 'application/json', 'x-goog-api-key': TOKEN },
      }, (res) => {
        assert.equal(res.statusCode, 200);
        res.once('data', (d) => {
          assert.match(d.toString(), /data: .*part 0/);
          req.destroy();
          clearTimeout(timer);
          resolve(Date.now());
        });
      });
      req.on('error', () => {});
      req.on('close', () => {});
      req.end(JSON.stringify(hello));
    });
    const t0 = Date.now();
    while (!streamConn.closedAt && Date.now() - t0 < 2000) await sleep(20);
    assert.ok(streamConn.closedAt, 'the upstream connection was still open 2 s after the client left');
    const dt = streamConn.closedAt - abortedAt;
    assert.ok(dt < 1000, `the upstream connection closed ${dt} ms after the client left`);
    // skiff is fine afterwards.
    await expectOk(serve);
  });
});

// ---- 10. an answer before the whole request was read (reliability issue, item 6) ----------------

test('an upstream that answers 400 keep-alive before reading a 16 MB body: the client gets the 400, the body is never sent from freed memory', async () => {
  // A raw upstream of its own: it answers on the head, stops reading, and reads the rest of the
  // body 3 s later, so skiff still has a write in flight when the answer is complete.
  const filler = 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(16 * 1024 * 1024 / 36);
  const big = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: filler }] }] });
  const bad = JSON.stringify({ error: { code: 400, message: 'Request payload size exceeds the limit.', status: 'INVALID_ARGUMENT' } });
  const got = { bytes: [], conns: 0 };
  const sockets = new Set();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    const conn = { n: got.conns++, bytes: 0, hash: createHash('sha256'), bodyAt: -1 };
    got.bytes.push(conn);
    sock.on('error', () => {});
    let buf = Buffer.alloc(0);
    sock.on('data', (d) => {
      if (conn.bodyAt >= 0) { // the big body: counted and hashed, never answered again
        conn.bytes += d.length;
        conn.hash.update(d);
        return;
      }
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const m = /content-length: *(\d+)/i.exec(buf.subarray(0, end).toString('latin1'));
        const len = m ? Number(m[1]) : 0;
        if (len > 1000) {
          sock.write(`HTTP/1.1 400 Bad Request\r\nContent-Type: application/json; charset=UTF-8\r\nContent-Length: ${Buffer.byteLength(bad)}\r\n\r\n${bad}`);
          sock.pause();
          setTimeout(() => sock.resume(), 3000);
          conn.bodyAt = end + 4;
          const rest = buf.subarray(end + 4);
          conn.bytes += rest.length;
          conn.hash.update(rest);
          return;
        }
        if (buf.length < end + 4 + len) return;
        buf = buf.subarray(end + 4 + len);
        reply(sock);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const up = { url: `http://127.0.0.1:${server.address().port}` };
  const serve = await startServe(config(up, { attempts: 1 }));
  try {
    await warmedUp(() => got.conns);
    const r = await post(serve, GEN, { body: big });
    const text = await r.text();
    assert.equal(r.status, 400, text.slice(0, 300));
    assert.match(text, /payload size/);
    // While the first connection still drains, the next requests must work (on another
    // connection: the first one cannot carry a request before its body is through).
    await expectOk(serve);
    await sleep(4000);
    await expectOk(serve);
    // What reached the upstream on the first connection is a prefix of the real body, never
    // other bytes: skiff either sent the body or stopped sending.
    const first = got.bytes[0];
    const sentBody = Buffer.from(big).subarray(0, first.bytes);
    assert.equal(first.hash.digest('hex'), createHash('sha256').update(sentBody).digest('hex'),
      `the upstream received ${first.bytes} bytes that are not the request body`);
  } finally {
    await serve.stop();
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  }
});

// ---- 11. a late answer on an idle connection (security issue, item 8) --------------------------

test('a late unsolicited answer on an idle upstream connection never reaches the next client', async () => {
  // The upstream answers each request with the marker from its body, then, on the same
  // keep-alive connection, sends one more response nobody asked for: sometimes well after
  // the answer (the connection is idle), sometimes in the same instant as the next
  // request, from another client, reaches skiff.
  const late = answer('LATE: an answer to nobody', 'lateLateLate');
  let last = null;
  await withRelay((req, sock) => {
    const m = /#(\d+)/.exec(req.body.toString());
    reply(sock, answer(`answer to #${m ? m[1] : '?'}`));
    last = sock;
  }, {}, async ({ up, serve }) => {
    const ask = async (i) => {
      const r = await post(serve, GEN, { body: { contents: [{ role: 'user', parts: [{ text: `Say hello #${i}` }] }] } });
      return { status: r.status, text: await r.text() };
    };
    const lateReply = () => {
      const b = Buffer.from(late);
      if (last && !last.destroyed) last.write(`${head(200, ['Content-Type: application/json; charset=UTF-8', `Content-Length: ${b.length}`])}${late}`);
    };
    const got = [];
    for (let i = 0; i < 24; i += 2) {
      got.push([i, await ask(i)]);
      if (i % 4 === 0) {
        lateReply();
        await sleep(60);
        got.push([i + 1, await ask(i + 1)]);
      } else {
        // Over TLS the late bytes take one more hop (the terminator) than the request: they
        // get a head start, or they would reach skiff after the request went out, where no
        // HTTP/1.1 client can tell them from the answer.
        if (TLS_UPSTREAM) { lateReply(); await sleep(20); }
        const p = ask(i + 1);
        if (!TLS_UPSTREAM) lateReply();
        got.push([i + 1, await p]);
      }
    }
    for (const [i, r] of got) {
      assert.ok(!r.text.includes('LATE'), `client #${i} got the late answer meant for nobody`);
      assert.equal(r.status, 200, `client #${i}: ${r.text.slice(0, 200)}`);
      assert.ok(r.text.includes(`answer to #${i}`), `client #${i} got another answer: ${r.text.slice(0, 200)}`);
    }
    assert.ok(up.connections > 1, 'no connection was ever dropped: the late answers went unnoticed');
  });
});
