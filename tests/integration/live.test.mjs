// The Live API through skiff (issue 16): @google/genai's ai.live.connect with its base URL at
// skiff, `skiff sim` as the upstream, four pool keys. A text turn and its usage; the session's
// key as the sim logs it and as skiff logs it (its label, never the key); a first key that is
// invalid or exhausted gives way to the next one; a client that goes away closes the upstream
// session within a second; goAway and the resumption update reach the client byte for byte as
// the sim sends them; an ephemeral token made through skiff opens a Constrained session on the
// key that made it, without a skiff token; what is refused is refused before the upstream.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import WebSocket from 'ws';
import { GoogleGenAI, Modality } from '@google/genai';
import { startSim, startServe, waitFor } from './lib.mjs';

const MODEL = 'gemini-live-2.5-flash-preview';
const KEYS = ['AIzaSyTESTkeyLiveRelay0000000000000000001', 'AIzaSyTESTkeyLiveRelay0000000000000000002',
  'AIzaSyTESTkeyLiveRelay0000000000000000003', 'AIzaSyTESTkeyLiveRelay0000000000000000004'];
const BAD = 'AIzaSyTESTkeyLiveRelayNotKnownToTheSim005'; // a key the sim does not know
const TOKEN = 'sk-live-relay-0123456789';
const PATH = '/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent';
let sim, serve;
const serves = [];

function config(keys) {
  return `
tokens: [{name: app, token: ${TOKEN}}]
upstreams: {gemini: {base_url: ${sim.url}, keys: [${keys.join(', ')}]}}
retry: {max_attempts: 4, base_delay_ms: 10, max_delay_ms: 50}
workers: 1
`;
}

before(async () => {
  sim = await startSim(['--keys', KEYS.join(','), '--rpm', `100000,${MODEL}:100000`, '--rpd', 'unlimited',
    '--live-session-ms', '1500', '--live-goaway-ms', '600']);
  serve = await startServe(config(KEYS));
  serves.push(serve);
});

after(async () => {
  for (const s of serves) {
    await s.stop();
    for (const k of [...KEYS, BAD]) assert.ok(!s.stderr.includes(k), 'a pool key appeared in skiff\'s log');
  }
  await sim?.stop();
});

const liveEntries = async () => (await sim.log()).filter((e) => e.live);
const sessions = (s) => s.stderr.split('\n').filter((l) => l.includes('"live_session"')).map((l) => JSON.parse(l));
const labelOf = (keys, key) => `key#${keys.indexOf(key) + 1}`;

// A raw client (ws) through skiff: messages as the exact text frames that arrived.
function connect(base, path, opts = {}) {
  const ws = new WebSocket(`${base.replace(/^http/, 'ws')}${path}`, opts);
  const c = { ws, raw: [], messages: [] };
  c.opened = new Promise((resolve, reject) => {
    ws.on('open', resolve);
    ws.on('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode, body })));
    });
    ws.on('error', reject);
  });
  ws.on('message', (data) => { c.raw.push(data.toString()); c.messages.push(JSON.parse(data.toString())); });
  c.close = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  c.send = (m) => ws.send(JSON.stringify(m));
  c.next = (pred, what, ms = 5000) => waitFor(what, () => c.messages.find(pred), ms);
  return c;
}

test('ai.live.connect through skiff: a text turn and its usageMetadata, on a pool key the sim and skiff\'s log agree on', async () => {
  await sim.reset();
  const ai = new GoogleGenAI({ apiKey: TOKEN, httpOptions: { baseUrl: serve.url } });
  const got = [];
  let closed;
  const session = await ai.live.connect({
    model: MODEL,
    config: { responseModalities: [Modality.TEXT] },
    callbacks: { onmessage: (m) => got.push(m), onclose: (e) => { closed = e; } },
  });
  session.sendClientContent({ turns: 'Hello through skiff' });
  const done = await waitFor('turnComplete', () => got.find((m) => m.serverContent?.turnComplete));
  assert.ok(got.filter((m) => m.serverContent?.modelTurn).map((m) => m.text).join('').length > 0);
  assert.ok(done.usageMetadata.promptTokenCount > 0);
  assert.equal(done.usageMetadata.totalTokenCount, done.usageMetadata.promptTokenCount + done.usageMetadata.responseTokenCount);
  session.close();
  await waitFor('onclose', () => closed);
  const [e] = await waitFor('the closed session in the sim\'s log', async () => { const l = await liveEntries(); return l[0]?.live.closed_ms && l; });
  assert.ok(KEYS.includes(e.key), `the sim saw ${e.key}, not a pool key`);
  assert.equal(e.model, MODEL);
  assert.equal(e.live.turns, 1);
  const [line] = await waitFor('skiff\'s live_session line', () => sessions(serve).length && sessions(serve));
  assert.equal(line['x-skiff-key'], labelOf(KEYS, e.key));
  assert.equal(line.model, MODEL);
  assert.equal(line.token, 'token:app');
  assert.ok(line.bytes_up > 0 && line.bytes_down > 0);
  assert.ok(!serve.stderr.includes(TOKEN), 'the client token appeared in the log');
});

test('a first key the upstream refuses (invalid, then exhausted): the session opens on another key, retried invisibly', async () => {
  await sim.reset();
  const keys = [BAD, ...KEYS];
  const s = await startServe(config(keys));
  serves.push(s);
  // BAD is key#1: Google closes its session 1007 "API key not valid"; the probe confirms it.
  const c = connect(s.url, `${PATH}?key=${TOKEN}`);
  await c.opened;
  c.send({ setup: { model: `models/${MODEL}` } });
  await c.next((m) => m.setupComplete, 'setupComplete');
  assert.equal(c.messages.length, 1, 'the refused session left no trace for the client');
  c.ws.close();
  await c.close;
  let l = await waitFor('both sessions', async () => { const x = await liveEntries(); return x.length === 2 && x.every((e) => e.live.closed_ms) && x; });
  assert.equal(l[0].key, BAD);
  assert.equal(l[0].live.close_code, 1007);
  assert.ok(KEYS.includes(l[1].key));
  const first = l[1].key;
  let line = await waitFor('the session line', () => sessions(s)[0]);
  assert.equal(line['x-skiff-key'], labelOf(keys, first));
  await waitFor('the retirement', () => /"key_health".*"key#1".*retire/i.test(s.stderr) || /"key#1".*"retired"/.test(s.stderr));

  // Exhausted keys (Google's 1011 quota close at the setup) rest, and the session goes on to
  // the next: every key but the last is exhausted once.
  await sim.reset();
  for (const k of KEYS.slice(0, 3)) await sim.script({ match: { key: k, method: 'bidiGenerateContent' }, reply: { status: 429 }, times: 1 });
  const d = connect(s.url, `${PATH}?key=${TOKEN}`);
  await d.opened;
  d.send({ setup: { model: `models/${MODEL}` } });
  await d.next((m) => m.setupComplete, 'setupComplete');
  assert.equal(d.messages.length, 1);
  d.ws.close();
  await d.close;
  l = await waitFor('the sessions', async () => { const x = await liveEntries(); return x.at(-1)?.key === KEYS[3] && x.at(-1).live.closed_ms && x; });
  assert.ok(l.length >= 2, 'no exhausted key was tried first');
  assert.ok(l.slice(0, -1).every((e) => e.live.close_code === 1011 && KEYS.slice(0, 3).includes(e.key)), 'a key was tried that was not exhausted');
  line = await waitFor('the second session line', () => sessions(s)[1]);
  assert.equal(line['x-skiff-key'], labelOf(keys, KEYS[3]));
});

test('a client that goes away: the upstream session is closed within a second', async () => {
  await sim.reset();
  const before = sessions(serve).length;
  const c = connect(serve.url, `${PATH}?key=${TOKEN}`);
  await c.opened;
  c.send({ setup: { model: `models/${MODEL}` } });
  await c.next((m) => m.setupComplete, 'setupComplete');
  const t0 = Date.now();
  c.ws.terminate();
  const [e] = await waitFor('the session closed in the sim\'s log', async () => { const l = await liveEntries(); return l[0]?.live.closed_ms && l; });
  assert.ok(e.live.closed_ms - t0 < 1000, `closed ${e.live.closed_ms - t0} ms after the client left`);
  const line = await waitFor('the line', () => sessions(serve)[before]);
  assert.equal(line.closed_by, 'client');
  assert.equal(line['x-skiff-key'], labelOf(KEYS, e.key));
});

test('goAway and the resumption update reach the client byte for byte as the sim sends them', async () => {
  await sim.reset();
  const setup = { setup: { model: `models/${MODEL}`, sessionResumption: {} } };
  const direct = connect(sim.url, `${PATH}?key=${KEYS[0]}`);
  const through = connect(serve.url, `${PATH}?key=${TOKEN}`);
  await Promise.all([direct.opened, through.opened]);
  direct.send(setup);
  through.send(setup);
  await direct.next((m) => m.goAway, 'goAway from the sim');
  await through.next((m) => m.goAway, 'goAway through skiff');
  const norm = (raw) => raw.map((r) => r.replace(/"newHandle":"[^"]*"/, '"newHandle":"H"'));
  assert.deepEqual(norm(through.raw), norm(direct.raw), 'the frames differ');
  assert.ok(through.messages.some((m) => m.sessionResumptionUpdate?.newHandle), 'no resumption handle');
  assert.equal((await through.close).code, (await direct.close).code);
});

test('an ephemeral token made through skiff opens a Constrained session on the key that made it, with no skiff token', async () => {
  await sim.reset();
  const r = await fetch(`${serve.url}/v1alpha/auth_tokens`, {
    method: 'POST', headers: { 'x-goog-api-key': TOKEN, 'content-type': 'application/json' }, body: JSON.stringify({ uses: 1 }),
  });
  assert.equal(r.status, 200);
  const { name } = await r.json();
  assert.match(name, /^auth_tokens\//);
  const made = (await sim.log()).find((e) => e.path === '/v1alpha/auth_tokens');
  assert.ok(KEYS.includes(made.key));

  // A browser holds only the ephemeral token.
  const ai = new GoogleGenAI({ apiKey: name, httpOptions: { baseUrl: serve.url, apiVersion: 'v1alpha' } });
  const got = [];
  let closed;
  const session = await ai.live.connect({
    model: MODEL, config: { responseModalities: [Modality.TEXT] },
    callbacks: { onmessage: (m) => got.push(m), onclose: (e) => { closed = e; } },
  });
  session.sendClientContent({ turns: 'hi with a token' });
  await waitFor('turnComplete', () => got.find((m) => m.serverContent?.turnComplete));
  session.close();
  await waitFor('onclose', () => closed);
  const e = await waitFor('the token session', async () => (await liveEntries()).find((x) => x.live.closed_ms));
  assert.equal(e.method, 'bidiGenerateContentConstrained');
  assert.equal(e.live.token, name, 'the token itself went upstream');
  assert.equal(e.key, made.key);
  const line = await waitFor('the line', () => sessions(serve).find((x) => x.token === 'token:app' && x.model === MODEL && x['x-skiff-key'] === labelOf(KEYS, made.key)));
  assert.ok(line);
  assert.ok(!serve.stderr.includes(name.slice(12)), 'the ephemeral token appeared in the log');

  // An ephemeral token skiff did not make: refused before any upstream call.
  await sim.reset();
  const unknown = connect(serve.url, '/ws/google.ai.generativelanguage.v1alpha.GenerativeService.BidiGenerateContentConstrained?access_token=auth_tokens/notmadebyskiff');
  await assert.rejects(unknown.opened, (err) => err.status === 401 && /not created through skiff/.test(err.body));
  assert.equal((await sim.log()).length, 0);
});

// Raw bytes to skiff, the first answer's head back.
function raw(url, text) {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(u.port), u.hostname, () => s.write(text));
    let got = '';
    s.on('data', (d) => { got += d; if (got.includes('\r\n\r\n')) { s.destroy(); resolve(got); } });
    s.on('error', reject);
    s.on('close', () => resolve(got));
  });
}

test('refused before the upstream: Upgrade off the Live paths (400), a bad handshake (400, 426), a wrong token (401)', async () => {
  await sim.reset();
  const hs = 'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';
  const off = await raw(serve.url, `GET /v1beta/models?key=${TOKEN} HTTP/1.1\r\nHost: localhost\r\n${hs}\r\n`);
  assert.match(off, /^HTTP\/1\.1 400 /);
  const nokey = await raw(serve.url, `GET ${PATH}?key=${TOKEN} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  assert.match(nokey, /^HTTP\/1\.1 400 /);
  const v8 = await raw(serve.url, `GET ${PATH}?key=${TOKEN} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
  assert.match(v8, /^HTTP\/1\.1 426 /);
  assert.match(v8, /sec-websocket-version: 13/i);
  const wrong = connect(serve.url, `${PATH}?key=not-a-skiff-token`);
  await assert.rejects(wrong.opened, (err) => err.status === 401 && /not one of skiff's tokens/.test(err.body));
  assert.equal((await sim.log()).length, 0, 'a refused handshake reached the upstream');
});

test('through upstreams.gemini.proxy (tinyproxy\'s CONNECT, with a password): the session opens on a pool key', async () => {
  const { spawn } = await import('node:child_process');
  const { mkdtempSync, writeFileSync, readFileSync, existsSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'skiff-live-proxy-'));
  const s0 = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => s0.once('listening', r));
  const port = s0.address().port;
  await new Promise((r) => s0.close(r));
  const log = join(dir, 'tinyproxy.log');
  writeFileSync(join(dir, 'tinyproxy.conf'), `Port ${port}\nListen 127.0.0.1\nTimeout 60\nMaxClients 50\nAllow 127.0.0.1\n` +
    `LogLevel Connect\nLogFile "${log}"\nBasicAuth skiffuser pr0xyPassLive\n`);
  const p = spawn('tinyproxy', ['-d', '-c', join(dir, 'tinyproxy.conf')], { stdio: 'ignore' });
  try {
    await waitFor('tinyproxy', () => new Promise((r) => { const c = net.connect(port, '127.0.0.1', () => { c.destroy(); r(true); }); c.on('error', () => r(false)); }), 5000);
    await sim.reset();
    const s = await startServe(config(KEYS).replace('keys:', `proxy: "http://skiffuser:pr0xyPassLive@127.0.0.1:${port}", keys:`));
    serves.push(s);
    const c = connect(s.url, `${PATH}?key=${TOKEN}`);
    await c.opened;
    c.send({ setup: { model: `models/${MODEL}` } });
    await c.next((m) => m.setupComplete, 'setupComplete');
    c.ws.close();
    await c.close;
    const [e] = await waitFor('the session', async () => { const l = await liveEntries(); return l[0]?.live.closed_ms && l; });
    assert.ok(KEYS.includes(e.key));
    assert.match(existsSync(log) ? readFileSync(log, 'utf8') : '', /CONNECT/);
    assert.ok(!s.stderr.includes('pr0xyPassLive'), 'the proxy password appeared in the log');
  } finally {
    p.kill('SIGTERM');
  }
});

test('the setup is bounded: none within limits.body_timeout_ms (1008), one over limits.max_body_bytes (1009); neither reaches the upstream', async () => {
  await sim.reset();
  const s = await startServe(config(KEYS).replace('workers: 1', 'workers: 1\nlimits: {body_timeout_ms: 300, max_body_bytes: 4096}'));
  serves.push(s);
  const idle = connect(s.url, `${PATH}?key=${TOKEN}`);
  await idle.opened;
  const t0 = Date.now();
  const closed = await idle.close;
  assert.equal(closed.code, 1008);
  assert.match(closed.reason, /no setup message within 300 ms/);
  assert.ok(Date.now() - t0 < 2000);
  const big = connect(s.url, `${PATH}?key=${TOKEN}`);
  await big.opened;
  big.send({ setup: { model: `models/${MODEL}`, systemInstruction: { parts: [{ text: 'x'.repeat(8000) }] } } });
  const c2 = await big.close;
  assert.equal(c2.code, 1009);
  assert.match(c2.reason, /larger than 4096 bytes/);
  assert.equal((await liveEntries()).length, 0);
  const lines = await waitFor('two session lines', () => sessions(s).length === 2 && sessions(s));
  assert.ok(lines.every((l) => l['x-skiff-key'] === 'none' && l.closed_by === 'skiff'));
});

test('a session resumed with its handle goes to the key whose session issued it', async () => {
  await sim.reset();
  const a = connect(serve.url, `${PATH}?key=${TOKEN}`);
  await a.opened;
  a.send({ setup: { model: `models/${MODEL}`, sessionResumption: {} } });
  const u = await a.next((m) => m.sessionResumptionUpdate?.newHandle, 'a resumption handle');
  a.ws.close();
  await a.close;
  // Sessions in between move the pool's choice (the least recently used key) past it.
  for (let i = 0; i < 4; i++) {
    const o = connect(serve.url, `${PATH}?key=${TOKEN}`);
    await o.opened;
    o.send({ setup: { model: `models/${MODEL}` } });
    await o.next((m) => m.setupComplete, 'setupComplete');
    o.ws.close();
    await o.close;
  }
  const b = connect(serve.url, `${PATH}?key=${TOKEN}`);
  await b.opened;
  b.send({ setup: { model: `models/${MODEL}`, sessionResumption: { handle: u.sessionResumptionUpdate.newHandle } } });
  await b.next((m) => m.setupComplete, 'setupComplete of the resumed session');
  b.ws.close();
  await b.close;
  const l = await waitFor('six sessions', async () => { const x = await liveEntries(); return x.length === 6 && x.every((e) => e.live.closed_ms) && x; });
  assert.equal(l[5].key, l[0].key, 'the resumed session went to another key');
  assert.ok(new Set(l.slice(0, 5).map((e) => e.key)).size > 1, 'the sessions in between did not move to other keys');
});

test('skiff shutting down: an open session hears 1001 (going away) and the upstream session is closed', async () => {
  await sim.reset();
  const s = await startServe(config(KEYS).replace('workers: 1', 'workers: 1\nshutdown: {drain_timeout_ms: 300}'));
  const c = connect(s.url, `${PATH}?key=${TOKEN}`);
  await c.opened;
  c.send({ setup: { model: `models/${MODEL}` } });
  await c.next((m) => m.setupComplete, 'setupComplete');
  await s.stop();
  const closed = await c.close;
  assert.equal(closed.code, 1001);
  assert.match(closed.reason, /skiff is shutting down: connect again/);
  const [e] = await waitFor('the session closed in the sim\'s log', async () => { const l = await liveEntries(); return l[0]?.live.closed_ms && l; });
  assert.ok(KEYS.includes(e.key));
  for (const k of KEYS) assert.ok(!s.stderr.includes(k));
});
