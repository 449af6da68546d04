// skiff serve in front of an https:// upstream speaking HTTP/2 and HTTP/1.1 (node's http2
// module with allowHTTP1, the test-only certificate in fixtures/tls), the road every call to
// Google takes. skiff's own client (the only one since libcurl went) offers h2 and http/1.1 in
// ALPN, so these cases run over HTTP/2 (relay/h2client.c).
// - upstreams.gemini.ca_file: the upstream's certificate is verified against that file, and
//   without it against the system store (which does not know the test CA).
// - An upstream that answers in full before it has read the request body, then resets the
//   stream with NO_ERROR (RFC 9113 section 8.1; nginx does this on `return`, Google can on an
//   early error): the answer is the answer, given once. libcurl 7.88 lost some of them and
//   the relay retried after a backoff, asking the upstream again (the ~200 ms stall of
//   issue 12).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServe } from './lib.mjs';

const FIX = join(dirname(fileURLToPath(import.meta.url)), 'fixtures/tls');
const CA = join(FIX, 'ca.pem');
const KEY = 'AIzaSyTlsUpstreamKey00000000000000000001';
const GEN = '/v1beta/models/gemini-2.5-flash:generateContent';
const ANSWER = JSON.stringify({
  candidates: [{ content: { parts: [{ text: 'Negative' }], role: 'model' }, finishReason: 'STOP', index: 0 }],
  usageMetadata: { promptTokenCount: 29, candidatesTokenCount: 1, totalTokenCount: 30 },
  modelVersion: 'gemini-2.5-flash',
});

// An HTTP/2 TLS upstream. early: answer as soon as the request's headers came, without
// reading the body, then RST_STREAM(NO_ERROR); window0: advertise a window of 0, so the
// client cannot send the body first. Otherwise it reads the body, then answers. Records
// every request it answered.
async function startH2Upstream({ early, window0 = false }) {
  const up = { requests: [] };
  const server = http2.createSecureServer({
    key: readFileSync(join(FIX, 'server.key')),
    cert: readFileSync(join(FIX, 'server.pem')),
    settings: window0 ? { initialWindowSize: 0 } : {},
    allowHTTP1: true,
  });
  // The same over HTTP/1.1 (ALPN http/1.1): early answers before reading the body.
  server.on('request', (hreq, res) => {
    if (hreq.httpVersionMajor === 2) return; // the 'stream' handler below has it
    const req = { path: hreq.url, key: hreq.headers['x-goog-api-key'], body: '' };
    up.requests.push(req);
    const answer = () => {
      res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8' });
      res.end(ANSWER);
    };
    hreq.on('data', (d) => { req.body += d; });
    if (early) answer();
    else hreq.on('end', answer);
  });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    const req = { path: headers[':path'], key: headers['x-goog-api-key'], body: '' };
    up.requests.push(req);
    const answer = () => {
      stream.respond({ ':status': 200, 'content-type': 'application/json; charset=UTF-8' });
      stream.end(ANSWER);
    };
    if (early) {
      answer();
      stream.close(http2.constants.NGHTTP2_NO_ERROR);
    } else {
      stream.on('data', (d) => { req.body += d; });
      stream.on('end', answer);
    }
  });
  server.on('sessionError', () => {});
  const sessions = new Set();
  server.on('session', (sess) => { sessions.add(sess); sess.on('close', () => sessions.delete(sess)); });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  up.url = `https://127.0.0.1:${server.address().port}`;
  up.close = () => new Promise((r) => {
    server.close(r);
    for (const sess of sessions) sess.destroy();
  });
  return up;
}

function config(up, extra = '') {
  return `storage: {sqlite: ''}
retry: {max_attempts: 3, base_delay_ms: 50, max_delay_ms: 50}
upstreams:
  gemini:
    base_url: ${up.url}
    keys: [${KEY}]
${extra}`;
}

const post = (serve, i = 0) => fetch(`${serve.url}${GEN}`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: `request ${i}` }] }] }),
});

test('ca_file: the upstream certificate is verified against it, and the call goes through', async () => {
  const up = await startH2Upstream({ early: false });
  const serve = await startServe(config(up, `    ca_file: ${CA}\n`));
  try {
    const r = await post(serve, 1);
    assert.equal(r.status, 200, await r.clone().text());
    assert.deepEqual(await r.json(), JSON.parse(ANSWER));
    assert.equal(up.requests.length, 1);
    assert.equal(up.requests[0].key, KEY);
    assert.equal(JSON.parse(up.requests[0].body).contents[0].parts[0].text, 'request 1');
  } finally {
    await serve.stop();
    await up.close();
  }
});

test('without ca_file the system store decides: a private CA is refused, nothing is sent', async () => {
  const up = await startH2Upstream({ early: false });
  const serve = await startServe(config(up));
  try {
    const r = await post(serve, 1);
    const text = await r.text();
    assert.ok(r.status >= 500, `expected a 5xx for an untrusted upstream, got ${r.status}: ${text}`);
    assert.match(text, /certificate/i);
    assert.equal(up.requests.length, 0, 'no request may reach an upstream whose certificate failed');
  } finally {
    await serve.stop();
    await up.close();
  }
});

// The upstream answers each request as soon as its HEADERS came, without reading the body
// (as nginx's `return` does), and resets the stream with NO_ERROR. A client that sends the
// body with its headers is never caught by that; one that leaves the body for a later loop
// turn loses some answers to the race (libcurl 7.88 lost ~1% with 8 in flight, and the relay
// retried them after its backoff: the ~200 ms stall of issue 12). This is a count over many
// calls, not a timing: no answer may be lost, and the upstream must not be asked more often
// than the calls and their logged retries explain. Honest limit: it is a race, and node's
// http2 answers more slowly than nginx (nginx in `make bench`: ~1 % of calls lost by libcurl,
// every run; results.md counts the retried attempts).
async function earlyAnswers() {
  const up = await startH2Upstream({ early: true });
  const serve = await startServe(config(up, `    ca_file: ${CA}\n`));
  try {
    const N = 2000, CONC = 64;
    let next = 0;
    const retried = [];
    const worker = async () => {
      while (next < N) {
        const i = next++;
        const r = await post(serve, i);
        const body = await r.text();
        assert.equal(r.status, 200, body);
        assert.deepEqual(JSON.parse(body), JSON.parse(ANSWER));
        if (r.headers.get('x-skiff-attempts') !== '1') retried.push(i);
      }
    };
    await Promise.all(Array.from({ length: CONC }, worker));
    // Every retried call must be explained by a connection-level failure: node's nghttp2 may
    // end the whole connection (GOAWAY) when a body arrives for a stream it has already
    // reset and forgotten, which fails every call on it (libcurl said "Error in the HTTP2
    // framing layer"). That is the upstream's doing; a stream-level loss of an answer is ours.
    const attempts = serve.stderr.split('\n').filter((l) => l.includes('"event":"attempt"'));
    const lost = attempts.filter((l) => !l.includes('"reason":"Error in the HTTP2 framing layer"'));
    assert.deepEqual(lost, [], `answers were lost and the calls retried (${retried.length} of ${N})`);
    // (A call on a connection that failed may or may not have reached the upstream.)
    assert.ok(up.requests.length >= N && up.requests.length <= N + attempts.length,
      `the upstream was asked ${up.requests.length} times for ${N} calls and ${attempts.length} logged retries`);
  } finally {
    await serve.stop();
    await up.close();
  }
}
// skiff's own client (relay/h2client.c) sends HEADERS and body in one flush and takes a
// stream whose answer came whole (END_STREAM) as the answer, whatever the reset after it.
test('answers sent before the upstream read the body are relayed once, none retried (own HTTP/2 client)',
  () => earlyAnswers());

// An upstream that can never get the body before it answers (flow-control window 0: an early
// error, say). libcurl 7.88 loses such an answer whenever the stream's close reaches its send
// side before its receive side (fixed in libcurl 8.3, commit 331b89a3); the relay then
// retries and the client gets a 502. The own HTTP/2 client must pass it.
async function window0() {
  const up = await startH2Upstream({ early: true, window0: true });
  const serve = await startServe(config(up, `    ca_file: ${CA}\n`));
  try {
    // The first call on a new connection may go out before the upstream's SETTINGS.
    await (await post(serve, 0)).arrayBuffer();
    const before = up.requests.length;
    const rs = await Promise.all(Array.from({ length: 16 }, (_, i) => post(serve, i + 1)));
    for (const r of rs) {
      assert.equal(r.status, 200, await r.clone().text());
      assert.equal(r.headers.get('x-skiff-attempts'), '1');
      assert.deepEqual(await r.json(), JSON.parse(ANSWER));
    }
    assert.equal(up.requests.length - before, 16);
  } finally {
    await serve.stop();
    await up.close();
  }
}
test('an answer sent while the body cannot go out (window 0) is the answer (own HTTP/2 client)',
  () => window0());
