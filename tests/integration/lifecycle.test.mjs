// Lifecycle and deadlines (issue 11): signals (SIGHUP never kills; SIGTERM drains the
// requests in flight, cuts what is left visibly, and exits 0; a second signal ends at once),
// a prompt stop while the catalog refresh hangs, and deadlines that fit long generations.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startSim, startServe, waitFor, logged } from './lib.mjs';

const K = ['AIzaLifecycleKeyOne000000000000000000001', 'AIzaLifecycleKeyTwo000000000000000000002'];
let sim;

before(async () => { sim = await startSim(['--rpm', 'unlimited', '--tpm', 'unlimited', '--rpd', 'unlimited']); });
after(async () => { await sim?.stop(); });
beforeEach(async () => { await sim.reset(); });

function config({ extra = '', retry = 'max_attempts: 4, base_delay_ms: 10, max_delay_ms: 40, deadline_ms: 8000' } = {}) {
  return `
upstreams: {gemini: {base_url: ${sim.url}, keys: [${K.join(', ')}]}}
retry: {${retry}}
storage: {sqlite: ""}
workers: 1
${extra}`;
}

const hello = { contents: [{ role: 'user', parts: [{ text: 'Say hello' }] }] };
const ev = (t) => ({ candidates: [{ content: { parts: [{ text: t }], role: 'model' }, index: 0 }], modelVersion: 'gemini-2.5-flash', responseId: 'life' });
const last = { candidates: [{ content: { parts: [{ text: 'the end' }], role: 'model' }, finishReason: 'STOP', index: 0 }], modelVersion: 'gemini-2.5-flash', responseId: 'life' };
const events = (n) => [...Array.from({ length: n - 1 }, (_, i) => ev(`part ${i} `)), last];

function gen(serve, { stream = false, headers = {} } = {}) {
  const method = stream ? 'streamGenerateContent?alt=sse' : 'generateContent';
  return fetch(`${serve.url}/v1beta/models/gemini-2.5-flash:${method}`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(hello),
  });
}

// Reads a whole response body; resolves {text, error}: error is set when the body did not end
// cleanly (the connection closed before the last chunk).
async function readAll(r) {
  const reader = r.body.getReader();
  let text = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { text, error: null };
      text += Buffer.from(value).toString();
    }
  } catch (e) {
    return { text, error: e };
  }
}

// Waits for the process to exit; resolves {code, signal, ms} (ms since `since`).
function exited(proc, since) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) resolve({ code: proc.exitCode, signal: proc.signalCode, ms: Date.now() - since });
    else proc.once('exit', (code, signal) => resolve({ code, signal, ms: Date.now() - since }));
  });
}

// One HTTP/1.1 request on an open socket; resolves the raw response head and body text.
function rawRequest(sock, path) {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d) => {
      buf += d;
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.slice(0, end);
      const len = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
      if (buf.length >= end + 4 + len) {
        sock.off('data', onData);
        resolve({ head, body: buf.slice(end + 4, end + 4 + len) });
      }
    };
    sock.on('data', onData);
    sock.once('error', reject);
    sock.write(`GET ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n`);
  });
}

test('SIGHUP kills neither serve nor sim: both log that it was ignored and go on serving', async () => {
  const serve = await startServe(config());
  const own = await startSim([]);
  try {
    serve.proc.kill('SIGHUP');
    own.proc.kill('SIGHUP');
    serve.proc.kill('SIGUSR1'); // a stray one must not take SIGTERM's handler away (stop() below)
    await waitFor('the sighup_ignored log lines', () => /"event":"sighup_ignored"/.test(serve.stderr) && /"event":"sighup_ignored"/.test(own.stderr));
    await logged(serve, /"event":"sighup_ignored".*restart/);
    const r = await gen(serve);
    assert.equal(r.status, 200);
    assert.ok((await r.json()).candidates);
    const s = await fetch(`${own.url}/v1beta/models`, { headers: { 'x-goog-api-key': 'AIzaAnything' } });
    assert.equal(s.status, 200);
    await s.text();
    assert.equal(serve.proc.exitCode, null);
    assert.equal(own.proc.exitCode, null);
  } finally {
    await serve.stop();
    await own.stop();
  }
});

test('nothing in flight: SIGTERM exits at once, with code 0', async () => {
  const serve = await startServe(config());
  const r = await gen(serve);
  await r.text();
  const t0 = Date.now();
  serve.proc.kill('SIGTERM');
  const x = await exited(serve.proc, t0);
  assert.equal(x.code, 0, serve.stderr.slice(-2000));
  assert.ok(x.ms < 1000, `took ${x.ms} ms`);
  await serve.stop();
});

test('SIGTERM drains: 5 streams in flight all finish cleanly, new requests get Connection: close, exit 0', async () => {
  const serve = await startServe(config());
  // An idle keep-alive connection opened before the signal.
  const sock = net.connect(new URL(serve.url).port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  const first = await rawRequest(sock, '/healthz');
  assert.doesNotMatch(first.head, /connection: close/i);

  await sim.script({ match: { method: 'streamGenerateContent' }, reply: { stream: events(8), chunkMs: 150 }, times: 5 });
  const streams = await Promise.all(Array.from({ length: 5 }, () => gen(serve, { stream: true })));
  const readers = streams.map((r) => { assert.equal(r.status, 200); return readAll(r); });
  await waitFor('5 streams under way', async () => (await sim.log()).filter((e) => e.stream && e.events >= 1).length === 5);
  const t0 = Date.now();
  serve.proc.kill('SIGTERM');
  const exit = exited(serve.proc, t0);
  await waitFor('the draining log line', () => /"event":"draining"/.test(serve.stderr));
  // A request on the open connection is answered, and told the connection ends.
  const during = await rawRequest(sock, '/healthz');
  assert.match(during.head, /^HTTP\/1\.1 200/);
  assert.match(during.head, /connection: close/i);
  await new Promise((r) => (sock.readyState === 'closed' ? r() : sock.once('close', r)));
  // A new connection is not accepted any more.
  await assert.rejects(fetch(`${serve.url}/healthz`));
  for (const done of await Promise.all(readers)) {
    assert.equal(done.error, null, `a stream was cut: ${done.error}`);
    assert.match(done.text, /the end/);
    assert.equal(done.text.split('\r\n\r\n').filter(Boolean).length, 8);
  }
  const x = await exit;
  assert.equal(x.code, 0, serve.stderr.slice(-2000));
  assert.ok(x.ms < 3000, `took ${x.ms} ms`);
  await serve.stop();
});

test('a stream longer than shutdown.drain_timeout_ms is cut visibly at its end; exit 0', async () => {
  const serve = await startServe(config({ extra: 'shutdown: {drain_timeout_ms: 600}' }));
  await sim.script({ match: { method: 'streamGenerateContent' }, reply: { stream: events(40), chunkMs: 100 }, times: 1 });
  await sim.script({ match: { method: 'generateContent' }, reply: { latencyMs: 5000 }, times: 1 });
  const r = await gen(serve, { stream: true });
  assert.equal(r.status, 200);
  const reading = readAll(r);
  const waiting = gen(serve); // a non-stream call the upstream is slow to answer
  await waitFor('both calls under way', async () => (await sim.log()).length === 2);
  const t0 = Date.now();
  serve.proc.kill('SIGTERM');
  const done = await reading;
  assert.ok(done.error, 'the cut stream ended as if it had finished');
  assert.doesNotMatch(done.text, /the end/);
  assert.match(done.text, /"code": 503/);
  assert.match(done.text, /shutdown\.drain_timeout_ms/);
  const w = await waiting;
  assert.equal(w.status, 503);
  assert.match((await w.json()).error.message, /shutting down/);
  assert.equal(w.headers.get('connection'), 'close');
  const x = await exited(serve.proc, t0);
  assert.equal(x.code, 0, serve.stderr.slice(-2000));
  assert.ok(x.ms >= 500 && x.ms < 2500, `took ${x.ms} ms`);
  await logged(serve, /"event":"drain_cut".*"requests":2/);
  await waitFor('the upstream calls cancelled', async () => (await sim.log()).every((e) => e.aborted));
  await serve.stop();
});

test('a second SIGTERM ends at once', async () => {
  const serve = await startServe(config());
  await sim.script({ match: { method: 'streamGenerateContent' }, reply: { stream: events(100), chunkMs: 100 }, times: 1 });
  const r = await gen(serve, { stream: true });
  const reading = readAll(r);
  await waitFor('the stream under way', async () => (await sim.log()).some((e) => e.events >= 1));
  serve.proc.kill('SIGTERM');
  await waitFor('the draining log line', () => /"event":"draining"/.test(serve.stderr));
  const t0 = Date.now();
  serve.proc.kill('SIGTERM');
  const x = await exited(serve.proc, t0);
  assert.equal(x.code, 0, serve.stderr.slice(-2000));
  assert.ok(x.ms < 1000, `took ${x.ms} ms`);
  assert.ok((await reading).error, 'the stream cut by the second signal ended cleanly');
  await serve.stop();
});

test('SIGTERM while the catalog refresh hangs on the upstream: the exit is prompt', async () => {
  await sim.script({ match: { method: 'models.list' }, reply: { hang: true }, times: 0 });
  const serve = await startServe(config({ extra: 'catalog: {refresh_s: 600}' }));
  await waitFor('the models.list call', async () => (await sim.log()).some((e) => e.method === 'models.list'));
  const t0 = Date.now();
  serve.proc.kill('SIGTERM');
  const x = await exited(serve.proc, t0);
  assert.equal(x.code, 0, serve.stderr.slice(-2000));
  assert.ok(x.ms < 2500, `took ${x.ms} ms`);
  assert.doesNotMatch(serve.stderr, /"event":"catalog_refresh"/, 'the stop was logged as a refresh failure');
  await serve.stop();
});

// ---- deadlines ----------------------------------------------------------------------------

test('retry.deadline_ms does not cut a healthy stream that runs past it', async () => {
  const serve = await startServe(config({ retry: 'max_attempts: 4, base_delay_ms: 10, max_delay_ms: 40, deadline_ms: 400' }));
  try {
    // The upstream connection is opened first (a TLS handshake under load can take longer
    // than this short deadline): what is timed is an attempt in flight.
    await (await gen(serve)).text();
    await sim.script({ match: { method: 'streamGenerateContent' }, reply: { stream: events(10), chunkMs: 120 }, times: 1 });
    const t0 = Date.now();
    const r = await gen(serve, { stream: true });
    assert.equal(r.status, 200);
    const done = await readAll(r);
    assert.equal(done.error, null, `the stream was cut: ${done.error}`);
    assert.ok(Date.now() - t0 > 1000, 'the stream was not longer than the deadline');
    assert.equal(done.text.split('\r\n\r\n').filter(Boolean).length, 10);
    assert.match(done.text, /the end/);
    await logged(serve, /"event":"deadline_passed"/);
  } finally {
    await serve.stop();
  }
});

test('retry.deadline_ms does not cut a non-stream attempt in flight; no attempt follows it', async () => {
  const serve = await startServe(config({ retry: 'max_attempts: 4, base_delay_ms: 10, max_delay_ms: 40, deadline_ms: 300' }));
  try {
    await (await gen(serve)).text(); // the upstream connection is opened first, as above
    await sim.script({ match: { method: 'generateContent' }, reply: { latencyMs: 900 }, times: 1 });
    const r = await gen(serve);
    assert.equal(r.status, 200);
    assert.ok((await r.json()).candidates[0].content.parts[0].text.length > 0);
    // A failure after the deadline is answered, not retried.
    await sim.script({ match: { method: 'generateContent' }, reply: { status: 503, latencyMs: 600 }, times: 1 });
    const f = await gen(serve);
    assert.equal(f.status, 503);
    assert.equal(f.headers.get('x-skiff-attempts'), '1');
    await f.text();
    assert.equal((await sim.log()).length, 3);
  } finally {
    await serve.stop();
  }
});

test('retry.max_stream_ms ends a stream that runs longer, visibly', async () => {
  const serve = await startServe(config({ retry: 'max_attempts: 4, base_delay_ms: 10, max_delay_ms: 40, deadline_ms: 8000, max_stream_ms: 500' }));
  try {
    await sim.script({ match: { method: 'streamGenerateContent' }, reply: { stream: events(30), chunkMs: 100 }, times: 1 });
    const t0 = Date.now();
    const r = await gen(serve, { stream: true });
    assert.equal(r.status, 200);
    const done = await readAll(r);
    const dt = Date.now() - t0;
    assert.ok(done.error, 'the stream ended as if it had finished');
    assert.match(done.text, /retry\.max_stream_ms/);
    assert.doesNotMatch(done.text, /the end/);
    assert.ok(dt >= 450 && dt < 2000, `took ${dt} ms`);
    await waitFor('the upstream call cancelled', async () => (await sim.log()).at(-1).aborted);
  } finally {
    await serve.stop();
  }
});

test('x-skiff-deadline-ms stays a hard limit on a whole stream', async () => {
  const serve = await startServe(config());
  try {
    await sim.script({ match: { method: 'streamGenerateContent' }, reply: { stream: events(30), chunkMs: 100 }, times: 1 });
    const t0 = Date.now();
    const r = await gen(serve, { stream: true, headers: { 'x-skiff-deadline-ms': '600' } });
    assert.equal(r.status, 200);
    const done = await readAll(r);
    const dt = Date.now() - t0;
    assert.ok(done.error, 'the stream ended as if it had finished');
    assert.match(done.text, /x-skiff-deadline-ms/);
    assert.ok(dt >= 550 && dt < 2000, `took ${dt} ms`);
  } finally {
    await serve.stop();
  }
});

// ---- first-byte timeouts ------------------------------------------------------------------

test('a first-byte timeout after the request was sent is not retried on another key', async () => {
  const serve = await startServe(config({ retry: 'max_attempts: 4, base_delay_ms: 10, max_delay_ms: 40, deadline_ms: 8000, first_byte_timeout_ms: 300' }));
  try {
    await sim.script({ match: { method: 'generateContent' }, reply: { latencyMs: 2000 }, times: 1 });
    const r = await gen(serve);
    assert.equal(r.status, 504);
    assert.equal(r.headers.get('x-skiff-attempts'), '1');
    assert.match(r.headers.get('x-skiff-hint') ?? '', /may still have been generating.*x-skiff-retry-timeouts: on/);
    assert.match((await r.json()).error.message, /first byte/);
    assert.equal((await sim.log()).length, 1, 'the upstream was asked twice');

    // The client may allow the retry.
    await sim.script({ match: { method: 'generateContent' }, reply: { latencyMs: 2000 }, times: 1 });
    const again = await gen(serve, { headers: { 'x-skiff-retry-timeouts': 'on' } });
    assert.equal(again.status, 200);
    assert.equal(again.headers.get('x-skiff-attempts'), '2');
    await again.text();
    assert.equal((await sim.log()).length, 3);
  } finally {
    await serve.stop();
  }
});

test('the non-stream first-byte timeout defaults to 600 s; streams keep their own', async () => {
  // With only stream_first_byte_timeout_ms short, a slow non-stream answer still arrives.
  const serve = await startServe(config({ retry: 'max_attempts: 4, base_delay_ms: 10, max_delay_ms: 40, deadline_ms: 8000, stream_first_byte_timeout_ms: 300' }));
  try {
    await sim.script({ match: { method: 'generateContent' }, reply: { latencyMs: 800 }, times: 1 });
    const r = await gen(serve);
    assert.equal(r.status, 200);
    await r.text();
    await sim.script({ match: { method: 'streamGenerateContent' }, reply: { latencyMs: 2000 }, times: 1 });
    const s = await gen(serve, { stream: true });
    assert.equal(s.status, 504);
    assert.match(s.headers.get('x-skiff-hint') ?? '', /stream_first_byte_timeout_ms/);
    await s.text();
  } finally {
    await serve.stop();
  }
});

test('a non-stream body that stalls after its first byte is bounded, not left hanging', async () => {
  // A raw upstream: the head and a few bytes of a 1000-byte body, then nothing.
  const up = net.createServer((sock) => {
    sock.once('data', () => sock.write('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"candidates":'));
  });
  await new Promise((r) => up.listen(0, '127.0.0.1', r));
  const serve = await startServe(`
upstreams: {gemini: {base_url: http://127.0.0.1:${up.address().port}, keys: [${K[0]}]}}
retry: {max_attempts: 1, deadline_ms: 1000, first_byte_timeout_ms: 1500}
storage: {sqlite: ""}
validation: off
workers: 1
`);
  try {
    // The deadline (1 s, long enough for a TLS handshake under load in the *_tls run) passes
    // while the body stalls; the first-byte timeout between pieces (1.5 s) ends the call.
    const t0 = Date.now();
    const r = await gen(serve);
    const dt = Date.now() - t0;
    assert.equal(r.status, 504);
    assert.match((await r.json()).error.message, /stalled/);
    assert.ok(dt >= 1450 && dt < 4000, `took ${dt} ms`);
  } finally {
    await serve.stop();
    up.close();
  }
});
