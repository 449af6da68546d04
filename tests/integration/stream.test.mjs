// Held streams (issue 11, item 15): the hold ends at the first event with content however the
// upstream formats its events, and each byte is scanned once. The upstream is a node HTTP
// server written here, so each scenario controls the exact bytes and when they come.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startServe } from './lib.mjs';

const KEY = 'AIzaSyStreamHoldKey00000000000000000001';

// An upstream whose answer to a stream call is written by script(res, req); resolves once
// listening.
async function startUpstream(script) {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => script(res, req));
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }) };
}

function config(url) {
  return `
upstreams: {gemini: {base_url: ${url}, keys: [${KEY}]}}
retry: {max_attempts: 2, base_delay_ms: 10, max_delay_ms: 40, deadline_ms: 10000}
storage: {sqlite: ""}
validation: false
workers: 1
`;
}

const hello = { contents: [{ role: 'user', parts: [{ text: 'Say hello' }] }] };

// A deferred: the upstream waits on it before sending the rest of the stream.
function deferred() {
  let resolve;
  const p = new Promise((r) => { resolve = r; });
  return { p, resolve };
}

test('a compact JSON-array stream: the first event reaches the client before the stream ends', async () => {
  const firstSeen = deferred();
  let restSentAt = 0;
  const first = JSON.stringify({ candidates: [{ content: { parts: [{ text: 'Hello {[,]}' }], role: 'model' }, index: 0 }], modelVersion: 'gemini-2.5-flash' });
  const last = JSON.stringify({ candidates: [{ content: { parts: [{ text: ' world' }], role: 'model' }, finishReason: 'STOP', index: 0 }], modelVersion: 'gemini-2.5-flash' });
  const up = await startUpstream(async (res) => {
    res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8' });
    res.write(`[${first}`);
    // Holds the rest until the client saw the first event, or 3 s if it never does.
    await Promise.race([firstSeen.p, new Promise((r) => setTimeout(r, 3000))]);
    restSentAt = Date.now();
    res.end(`,${last}]`);
  });
  const serve = await startServe(config(up.url));
  try {
    const r = await fetch(`${serve.url}/v1beta/models/gemini-2.5-flash:streamGenerateContent`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(hello),
    });
    assert.equal(r.status, 200);
    const reader = r.body.getReader();
    let text = '', sawFirstAt = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString();
      if (!sawFirstAt && text.includes('Hello {[,]}')) {
        sawFirstAt = Date.now();
        firstSeen.resolve();
      }
    }
    assert.ok(sawFirstAt > 0);
    assert.ok(restSentAt >= sawFirstAt, 'the first event was held until the stream ended');
    // The bytes are the upstream's, unchanged.
    assert.equal(text, `[${first},${last}]`);
  } finally {
    await serve.stop();
    await up.close();
  }
});

test('a compact JSON-array stream that starts with an error element is retried, not committed', async () => {
  let calls = 0;
  const ok = JSON.stringify({ candidates: [{ content: { parts: [{ text: 'Fine' }], role: 'model' }, finishReason: 'STOP', index: 0 }] });
  const up = await startUpstream((res) => {
    calls++;
    res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8' });
    if (calls === 1) res.end('[{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}]');
    else res.end(`[${ok}]`);
  });
  const serve = await startServe(config(up.url));
  try {
    const r = await fetch(`${serve.url}/v1beta/models/gemini-2.5-flash:streamGenerateContent`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(hello),
    });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-skiff-attempts'), '2');
    assert.equal(await r.text(), `[${ok}]`);
    assert.equal(calls, 2);
  } finally {
    await serve.stop();
    await up.close();
  }
});
