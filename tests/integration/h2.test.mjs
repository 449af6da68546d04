// HTTP/2 to the upstream (relay/h2client.c behind relay/h1client.c): skiff serve in front of
// an HTTPS upstream that offers h2 (lib.mjs's h2Bridge in front of `skiff sim`, or a stream
// the test answers itself), counting the connections skiff opens at the bridge.
// - many concurrent calls share few connections (at most 100 streams each, as Google);
// - a stream whose client stops reading does not hold up another stream on the connection;
// - GOAWAY mid-load: streams the upstream did not take go again on a new connection, and no
//   request reaches the upstream twice;
// - RST_STREAM from the upstream: REFUSED_STREAM goes again silently (not processed), any
//   other code is a failed attempt the relay counts;
// - the connection dropped mid-stream is an error, never a clean end;
// - a client that goes away resets its stream (CANCEL), and the connection lives on;
// - no ~200 ms stall (issue 12) over 2,000 calls.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import { startSim, startServe, h2Bridge, tlsCerts, sleep, waitFor } from './lib.mjs';

const KEY = 'AIzaSyH2UpstreamTestKey000000000000000001';
const MODEL = 'gemini-2.5-flash';
const GEN = `/v1beta/models/${MODEL}:generateContent`;
const STREAM = `/v1beta/models/${MODEL}:streamGenerateContent?alt=sse`;
const BODY = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hello' }] }] });
const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM, NGHTTP2_INTERNAL_ERROR } = http2.constants;

let sim;
before(async () => { sim = await startSim(['--rpm', 'unlimited', '--tpm', 'unlimited', '--rpd', 'unlimited']); });
after(async () => { await sim?.stop(); });

const simPort = () => Number(new URL(sim.url).port);

function config(url, extra = '') {
  return `
upstreams:
  gemini:
    ca_file: ${tlsCerts().caFile}
    base_url: ${url}
    keys: [${KEY}]
retry: {max_attempts: 3, base_delay_ms: 10, max_delay_ms: 20, deadline_ms: 10000}
storage: {sqlite: ""}
workers: 1
${extra}`;
}

// A bridge and a skiff in front of it; skiff's warm connection is open before fn runs.
async function withH2(opts, fn) {
  await sim.reset();
  const bridge = await h2Bridge(simPort(), { fresh: true, ...opts });
  const serve = await startServe(config(bridge.url, opts.extra));
  try {
    await waitFor('the warm connection', () => bridge.stats.sessions >= 1);
    await fn({ bridge, serve, stats: bridge.stats });
  } finally {
    await serve.stop();
    bridge.close();
  }
}

const post = (serve, path = GEN, init = {}) =>
  fetch(`${serve.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: BODY, ...init });

const ev = (text) => `data: ${JSON.stringify({ candidates: [{ content: { parts: [{ text }], role: 'model' }, index: 0 }], modelVersion: MODEL })}\r\n\r\n`;

test('300 concurrent calls share at most 4 connections (100 streams each), the first takes the warm one, and PINGs are answered', async () => {
  await withH2({}, async ({ serve, stats }) => {
    const first = await post(serve);
    assert.equal(first.status, 200);
    await first.text();
    assert.equal(stats.sessions, 1, 'the first call opened a connection of its own');
    const pong = await new Promise((r) => [...stats.live][0].ping((err) => r(err)));
    assert.equal(pong, null, 'skiff did not answer the upstream\'s PING');
    await sim.script({ match: { method: 'generateContent' }, reply: { latencyMs: 300 }, times: 0 });
    const rs = await Promise.all(Array.from({ length: 300 }, () => post(serve).then(async (r) => ({ status: r.status, attempts: r.headers.get('x-skiff-attempts'), body: await r.text() }))));
    assert.deepEqual([...new Set(rs.map((r) => r.status))], [200]);
    assert.deepEqual([...new Set(rs.map((r) => r.attempts))], ['1']);
    assert.ok(stats.sessions <= 4, `${stats.sessions} connections for 300 calls at 100 streams a connection`);
    assert.equal((await sim.log()).length, 301, 'a call reached the upstream twice or not at all');
  });
});

test('a stream whose client stops reading holds up no other stream on the same connection, and arrives whole later', async () => {
  const EVENTS = 400; // ~8 MB: far past every window
  const big = ev('x'.repeat(20000));
  await withH2({
    onStream: (stream, headers) => {
      if (!headers[':path'].includes('streamGenerateContent')) return false;
      stream.respond({ ':status': 200, 'content-type': 'text/event-stream' });
      let i = 0;
      const pump = () => {
        while (i < EVENTS) { i++; if (!stream.write(big)) { stream.once('drain', pump); return; } }
        stream.end();
      };
      pump();
      return true;
    },
  }, async ({ serve, stats }) => {
    const slow = await new Promise((resolve, reject) => {
      const req = http.request(`${serve.url}${STREAM}`, { method: 'POST', headers: { 'content-type': 'application/json' } }, resolve);
      req.on('error', reject);
      req.end(BODY);
    });
    assert.equal(slow.statusCode, 200);
    slow.pause(); // the client stops reading: skiff pauses the call, its stream's window fills
    await sleep(500);
    for (let i = 0; i < 5; i++) {
      const t0 = Date.now();
      const r = await post(serve);
      assert.equal(r.status, 200);
      await r.text();
      assert.ok(Date.now() - t0 < 2000, `a small call took ${Date.now() - t0} ms next to a stalled stream`);
    }
    assert.equal(stats.sessions, 1, 'the small calls were not on the stalled stream\'s connection');
    let bytes = 0, events = 0;
    slow.on('data', (d) => { bytes += d.length; events += (d.toString().match(/^data: /mg) || []).length; });
    slow.resume();
    await new Promise((r) => slow.on('end', r));
    assert.ok(bytes >= EVENTS * 20000, `the stalled stream arrived short: ${bytes} bytes`);
  });
});

test('GOAWAY mid-load: the streams the upstream did not take go again on a new connection, none reaches the upstream twice', async () => {
  const N = 10, KEEP = 5;
  let held = [], first = null, gone = false;
  const forward = async (stream, headers) => {
    // Bridge by hand to the sim (the bridge's own path is not reachable from here).
    const h = {};
    for (const [k, v] of Object.entries(headers)) if (!k.startsWith(':')) h[k] = v;
    let body = '';
    stream.on('data', (d) => { body += d; });
    await new Promise((r) => stream.on('end', r));
    const r = await fetch(`${sim.url}${headers[':path']}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-goog-api-key': h['x-goog-api-key'] }, body });
    const text = await r.text();
    stream.respond({ ':status': r.status, 'content-type': 'application/json' });
    stream.end(text);
  };
  await withH2({
    onStream: (stream, headers, session) => {
      if (first === null) first = session;
      if (session !== first || gone) return false; // later connections: bridged as usual
      held.push({ stream, headers });
      if (held.length === N) {
        held.sort((a, b) => a.stream.id - b.stream.id);
        gone = true;
        session.goaway(http2.constants.NGHTTP2_NO_ERROR, held[KEEP - 1].stream.id);
        for (const x of held.slice(0, KEEP)) forward(x.stream, x.headers);
      }
      return true;
    },
  }, async ({ serve, stats }) => {
    const rs = await Promise.all(Array.from({ length: N }, () => post(serve).then(async (r) => ({ status: r.status, attempts: r.headers.get('x-skiff-attempts'), body: await r.text() }))));
    assert.deepEqual(rs.map((r) => r.status), Array(N).fill(200), JSON.stringify(rs.filter((r) => r.status !== 200)));
    assert.deepEqual(rs.map((r) => r.attempts), Array(N).fill('1'), 'a stream the upstream never took was counted as an attempt');
    assert.equal((await sim.log()).length, N, 'a request reached the upstream twice (or not at all)');
    assert.ok(stats.sessions >= 2, 'the refused streams did not go on a new connection');
  });
});

test('RST_STREAM from the upstream: REFUSED_STREAM goes again unseen; INTERNAL_ERROR is a failed attempt the relay counts', async () => {
  let mode = null, resets = 0;
  await withH2({
    onStream: (stream) => {
      if (!mode || resets > 0) return false;
      resets++;
      stream.close(mode);
      return true;
    },
  }, async ({ serve }) => {
    mode = NGHTTP2_REFUSED_STREAM;
    let r = await post(serve);
    assert.equal(r.status, 200);
    await r.text();
    assert.equal(r.headers.get('x-skiff-attempts'), '1', 'a refused stream (never processed) was counted as an attempt');
    assert.equal((await sim.log()).length, 1);
    mode = NGHTTP2_INTERNAL_ERROR;
    resets = 0;
    r = await post(serve);
    assert.equal(r.status, 200);
    await r.text();
    assert.equal(r.headers.get('x-skiff-attempts'), '2', 'a reset stream (maybe processed) went again without being counted');
    assert.match(serve.stderr, /"event":"attempt".*reset the stream without answering \(INTERNAL_ERROR\)/);
  });
});

test('the upstream dropping the connection mid-stream ends the stream as a failure, not a clean end; the next call opens a new one', async () => {
  let drop = true;
  await withH2({
    onStream: (stream, headers, session) => {
      if (!drop || !headers[':path'].includes('streamGenerateContent')) return false;
      drop = false;
      stream.respond({ ':status': 200, 'content-type': 'text/event-stream' });
      stream.write(ev('one '));
      setTimeout(() => session.destroy(), 200);
      return true;
    },
  }, async ({ serve, stats }) => {
    const r = await post(serve, STREAM);
    assert.equal(r.status, 200);
    let text = '';
    const reader = r.body.getReader();
    await assert.rejects(async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += Buffer.from(value).toString();
      }
    }, 'the cut stream ended cleanly');
    assert.match(text, /one /);
    assert.match(text, /"error": \{/);
    await logged(serve, /closed the connection before the response was complete/);
    const next = await post(serve);
    assert.equal(next.status, 200);
    await next.text();
    assert.ok(stats.sessions >= 2);
  });
});

test('a client that goes away resets its upstream stream (CANCEL) within a second; the connection carries the next call', async () => {
  let closed = null;
  await withH2({
    onStream: (stream, headers) => {
      if (!headers[':path'].includes('streamGenerateContent')) return false;
      stream.respond({ ':status': 200, 'content-type': 'text/event-stream' });
      stream.write(ev('one '));
      const t = setInterval(() => stream.write(ev('more ')), 100);
      stream.on('close', () => { clearInterval(t); closed = { at: Date.now(), code: stream.rstCode }; });
      return true;
    },
  }, async ({ serve, stats }) => {
    const ac = new AbortController();
    const r = await post(serve, STREAM, { signal: ac.signal });
    assert.equal(r.status, 200);
    const reader = r.body.getReader();
    await reader.read();
    const t0 = Date.now();
    ac.abort();
    await waitFor('the upstream stream to be reset', () => closed, 1000);
    assert.equal(closed.code, NGHTTP2_CANCEL);
    assert.ok(closed.at - t0 < 1000);
    const next = await post(serve);
    assert.equal(next.status, 200);
    await next.text();
    assert.equal(stats.sessions, 1, 'the reset took the connection down');
  });
});

// The upstream answers on the stream itself (as nginx's `return` does), so what is timed is
// skiff's HTTP/2 path, not the bridge's second hop.
test('no stall: 2,000 calls (8 clients at a time, each in sequence) over HTTP/2, none retried, fewer than 0.5 % slower than 150 ms', async () => {
  const answer = JSON.stringify({ candidates: [{ content: { parts: [{ text: 'Hi' }], role: 'model' }, finishReason: 'STOP', index: 0 }], modelVersion: MODEL });
  const onStream = (stream) => {
    stream.on('data', () => {});
    stream.on('end', () => { stream.respond({ ':status': 200, 'content-type': 'application/json' }); stream.end(answer); });
    return true;
  };
  await withH2({ onStream }, async ({ serve, stats }) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    const one = () => new Promise((resolve, reject) => {
      const t0 = process.hrtime.bigint();
      const req = http.request(`${serve.url}${GEN}`, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode, ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
      });
      req.on('error', reject);
      req.end(BODY);
    });
    const times = [];
    await Promise.all(Array.from({ length: 8 }, async () => {
      for (let i = 0; i < 250; i++) {
        const r = await one();
        assert.equal(r.status, 200);
        times.push(r.ms);
      }
    }));
    agent.destroy();
    times.sort((a, b) => a - b);
    const slow = times.filter((t) => t > 150);
    // A ~200 ms stall in one call in a hundred (issue 12: a retry's backoff, or Nagle against
    // a delayed ACK) makes ~20 of these; a busy machine pauses the processes now and then.
    assert.ok(slow.length < 10, `${slow.length} of 2,000 calls took over 150 ms (max ${times.at(-1).toFixed(1)} ms, p99 ${times[1979].toFixed(1)} ms)`);
    assert.ok(!/"event":"attempt"/.test(serve.stderr), 'an upstream attempt was retried');
    assert.equal(stats.sessions, 1);
  });
});

async function logged(proc, re, ms = 3000) {
  await waitFor(`a log line matching ${re}`, () => re.test(proc.stderr), ms);
}
