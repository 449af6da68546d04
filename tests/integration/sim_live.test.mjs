// The simulator's Live API (issue 16), against `skiff sim` directly: a raw WebSocket client
// (`ws`) for the handshake, setup, a text turn and its usage, goAway after the session limit,
// resumption handles, Google's close codes for a bad key, an unknown model, a bad first
// message, an exhausted key and a message too large, ephemeral tokens accepted and refused; and
// @google/genai's ai.live.connect pointed at the sim for one text turn. Every session must be
// in /_sim/log with its key, model, path, and when it opened and closed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import WebSocket from 'ws';
import { GoogleGenAI, Modality } from '@google/genai';
import { startSim, waitFor } from './lib.mjs';

const KEY = 'AIzaSyTESTkeyLive00000000000000000000001';
const KEY2 = 'AIzaSyTESTkeyLive00000000000000000000002';
const MODEL = 'gemini-live-2.5-flash-preview';
const PATH = '/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent';
const CONSTRAINED = '/ws/google.ai.generativelanguage.v1alpha.GenerativeService.BidiGenerateContentConstrained';
let sim, wsBase;

before(async () => {
  sim = await startSim(['--keys', `${KEY},${KEY2}`, '--rpm', `100000,${MODEL}:100000`,
    '--rpd', 'unlimited', '--live-session-ms', '1500', '--live-goaway-ms', '500']);
  wsBase = sim.url.replace(/^http/, 'ws');
});

after(async () => {
  await sim?.stop();
});

// A connected client: resolves once open, collecting every message (parsed) and the close.
function connect(path, opts = {}) {
  const ws = new WebSocket(`${wsBase}${path}`, opts);
  const c = { ws, messages: [], binary: [], closed: null };
  c.opened = new Promise((resolve, reject) => {
    ws.on('open', resolve);
    ws.on('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode, body })));
    });
    ws.on('error', reject);
  });
  ws.on('message', (data, isBinary) => {
    c.binary.push(isBinary);
    c.messages.push(JSON.parse(data.toString()));
  });
  c.close = new Promise((resolve) => ws.on('close', (code, reason) => {
    c.closed = { code, reason: reason.toString() };
    resolve(c.closed);
  }));
  c.send = (m) => ws.send(JSON.stringify(m));
  c.next = (pred, what, ms = 3000) => waitFor(what, () => c.messages.find(pred), ms);
  return c;
}

const keyPath = (key = KEY) => `${PATH}?key=${key}`;
const turn = (text) => ({ clientContent: { turns: [{ role: 'user', parts: [{ text }] }], turnComplete: true } });

async function liveEntries() {
  return (await sim.log()).filter((e) => e.live);
}

test('the handshake, setup, a text turn with its usage, and the session in the log', async () => {
  await sim.reset();
  const c = connect(keyPath());
  await c.opened;
  assert.equal(c.ws.extensions, '', 'no extension is negotiated');
  c.send({ setup: { model: `models/${MODEL}`, generationConfig: { responseModalities: ['TEXT'] } } });
  await c.next((m) => m.setupComplete, 'setupComplete');
  assert.deepEqual(c.messages[0], { setupComplete: {} });
  c.send(turn('Say hello to the Live API'));
  const done = await c.next((m) => m.serverContent?.turnComplete, 'turnComplete');
  const text = c.messages.filter((m) => m.serverContent?.modelTurn).map((m) => m.serverContent.modelTurn.parts.map((p) => p.text).join('')).join('');
  assert.ok(text.length > 0, 'the model turn has text');
  assert.ok(c.messages.some((m) => m.serverContent?.generationComplete), 'generationComplete comes before turnComplete');
  const u = done.usageMetadata;
  assert.ok(u.promptTokenCount > 0 && u.responseTokenCount > 0);
  assert.equal(u.totalTokenCount, u.promptTokenCount + u.responseTokenCount);
  assert.deepEqual(u.promptTokensDetails, [{ modality: 'TEXT', tokenCount: u.promptTokenCount }]);
  assert.ok(c.binary.every((b) => b), 'server messages are binary frames, as Google sends them');

  // The same prompt gives the same answer (deterministic, like generateContent's).
  const d = connect(keyPath());
  await d.opened;
  d.send({ setup: { model: `models/${MODEL}` } });
  await d.next((m) => m.setupComplete, 'setupComplete');
  d.send(turn('Say hello to the Live API'));
  await d.next((m) => m.serverContent?.turnComplete, 'turnComplete');
  const text2 = d.messages.filter((m) => m.serverContent?.modelTurn).map((m) => m.serverContent.modelTurn.parts.map((p) => p.text).join('')).join('');
  assert.equal(text2, text);

  // A second turn counts the session's context in its prompt.
  c.send(turn('And once more'));
  const second = await waitFor('the second turnComplete', () => c.messages.filter((m) => m.serverContent?.turnComplete)[1]);
  assert.ok(second.usageMetadata.promptTokenCount > u.totalTokenCount);

  const t0 = Date.now();
  c.ws.close(1000, 'bye');
  d.ws.close(1000);
  assert.equal((await c.close).code, 1000);
  const [e] = await waitFor('both sessions closed in the log', async () => {
    const l = await liveEntries();
    return l.length === 2 && l.every((x) => x.live.closed_ms) && l;
  });
  assert.equal(e.path, PATH);
  assert.equal(e.key, KEY);
  assert.equal(e.model, MODEL);
  assert.equal(e.method, 'bidiGenerateContent');
  assert.equal(e.status, 101);
  assert.equal(e.live.turns, 2);
  assert.equal(e.live.close_code, 1000);
  assert.equal(e.live.closed_by, 'client');
  assert.equal(e.live.end, 'the client closed the WebSocket');
  assert.ok(e.live.opened_ms <= e.live.closed_ms);
  assert.ok(Math.abs(e.live.closed_ms - t0) < 1000, 'the session closed within a second of the client leaving');
});

test('a client that vanishes without a close frame: the session is closed in the log within a second', async () => {
  await sim.reset();
  const c = connect(`${PATH}?key=${KEY2}`);
  await c.opened;
  c.send({ setup: { model: `models/${MODEL}` } });
  await c.next((m) => m.setupComplete, 'setupComplete');
  const t0 = Date.now();
  c.ws.terminate();
  const [e] = await waitFor('the session closed in the log', async () => {
    const l = await liveEntries();
    return l.length === 1 && l[0].live.closed_ms && l;
  });
  assert.equal(e.key, KEY2);
  assert.equal(e.live.close_code, null);
  assert.equal(e.live.closed_by, 'client');
  assert.equal(e.live.end, 'client closed');
  assert.ok(e.live.closed_ms - t0 < 1000);
});

test('the key in x-goog-api-key, realtimeInput text, and the SDK\'s "//ws/" path', async () => {
  await sim.reset();
  const c = connect(`/${PATH}`, { headers: { 'x-goog-api-key': KEY } });
  await c.opened;
  c.send({ setup: { model: `models/${MODEL}` } });
  await c.next((m) => m.setupComplete, 'setupComplete');
  c.send({ realtimeInput: { text: 'hello from realtime input' } });
  const done = await c.next((m) => m.serverContent?.turnComplete, 'turnComplete');
  assert.ok(done.usageMetadata.responseTokenCount > 0);
  c.ws.close();
  await c.close;
  const [e] = await liveEntries();
  assert.equal(e.key, KEY);
});

test('goAway with timeLeft once the session limit has passed, then Google\'s close 1008', async () => {
  await sim.reset();
  const c = connect(keyPath());
  await c.opened;
  const t0 = Date.now();
  c.send({ setup: { model: `models/${MODEL}` } });
  const g = await c.next((m) => m.goAway, 'goAway', 4000);
  assert.deepEqual(g, { goAway: { timeLeft: '0.500s' } });
  assert.ok(Date.now() - t0 >= 1400, 'goAway comes when the limit (1.5 s) has passed');
  const closed = await c.close;
  assert.equal(closed.code, 1008);
  assert.match(closed.reason, /^Connection aborted because the client failed to close the connection after receiving a GoAway signal/);
  assert.ok(Buffer.byteLength(closed.reason) <= 123);
  const [e] = await waitFor('the log', async () => { const l = await liveEntries(); return l[0]?.live.closed_ms && l; });
  assert.equal(e.live.goaway, true);
  assert.equal(e.live.close_code, 1008);
  assert.equal(e.live.closed_by, 'sim');
  assert.equal(e.live.end, 'the client answered our close frame');
});

test('session resumption: a handle after setup and after each turn; a known handle of the same project resumes, another project\'s does not', async () => {
  await sim.reset();
  const c = connect(keyPath());
  await c.opened;
  c.send({ setup: { model: `models/${MODEL}`, sessionResumption: {} } });
  const first = await c.next((m) => m.sessionResumptionUpdate, 'sessionResumptionUpdate');
  assert.equal(first.sessionResumptionUpdate.resumable, true);
  assert.ok(first.sessionResumptionUpdate.newHandle.length >= 16);
  c.send(turn('remember this'));
  await c.next((m) => m.serverContent?.turnComplete, 'turnComplete');
  const updates = await waitFor('a second update', () => {
    const u = c.messages.filter((m) => m.sessionResumptionUpdate);
    return u.length >= 2 && u;
  });
  const handle = updates.at(-1).sessionResumptionUpdate.newHandle;
  assert.notEqual(handle, first.sessionResumptionUpdate.newHandle);
  c.ws.close();
  await c.close;

  const r = connect(keyPath());
  await r.opened;
  r.send({ setup: { model: `models/${MODEL}`, sessionResumption: { handle } } });
  await r.next((m) => m.setupComplete, 'setupComplete');
  r.send(turn('what was it?'));
  const done = await r.next((m) => m.serverContent?.turnComplete, 'turnComplete');
  assert.ok(done.usageMetadata.promptTokenCount > 10, 'the resumed context counts in the prompt');
  r.ws.close();
  await r.close;

  const other = connect(keyPath(KEY2));
  await other.opened;
  other.send({ setup: { model: `models/${MODEL}`, sessionResumption: { handle } } });
  const closed = await other.close;
  assert.equal(closed.code, 1008);
  assert.ok(!other.messages.some((m) => m.setupComplete));
  const unknown = connect(keyPath());
  await unknown.opened;
  unknown.send({ setup: { model: `models/${MODEL}`, sessionResumption: { handle: 'nosuchhandle' } } });
  assert.equal((await unknown.close).code, 1008);
  const l = await waitFor('four closed sessions', async () => { const x = await liveEntries(); return x.length === 4 && x.every((e) => e.live.closed_ms) && x; });
  assert.deepEqual(l.map((e) => e.live.resumed), [false, true, false, false]);
});

test('Google\'s refusals: a bad key (1007), no key (1008), an unknown model (1008), a bad first message (1007), a message too large (1009)', async () => {
  await sim.reset();
  const bad = connect(keyPath('AIzaSyNotAKeyOfThisSim000000000000000000'));
  await bad.opened; // the socket opens, then closes with the reason
  assert.deepEqual(await bad.close, { code: 1007, reason: 'API key not valid. Please pass a valid API key.' });

  const none = connect(PATH);
  await none.opened;
  const n = await none.close;
  assert.equal(n.code, 1008);
  assert.match(n.reason, /^Method doesn't allow unregistered callers/);

  const model = connect(keyPath());
  await model.opened;
  model.send({ setup: { model: 'models/gemini-2.5-flash' } });
  assert.deepEqual(await model.close, { code: 1008, reason: 'models/gemini-2.5-flash is not found for API version v1beta, or is not supported for bidiGenerateContent.' });

  const first = connect(keyPath());
  await first.opened;
  first.send(turn('no setup first'));
  assert.deepEqual(await first.close, { code: 1007, reason: 'Request contains an invalid argument.' });

  const junk = connect(keyPath());
  await junk.opened;
  junk.ws.send('{not json');
  assert.equal((await junk.close).code, 1007);

  const big = connect(keyPath());
  await big.opened;
  big.send({ setup: { model: `models/${MODEL}` } });
  await big.next((m) => m.setupComplete, 'setupComplete');
  big.send(turn('x'.repeat(1100 * 1024)));
  assert.equal((await big.close).code, 1009);

  const l = await waitFor('six closed sessions', async () => { const x = await liveEntries(); return x.length === 6 && x.every((e) => e.live.closed_ms) && x; });
  assert.deepEqual(l.map((e) => e.live.close_code), [1007, 1008, 1008, 1007, 1007, 1009]);
  assert.equal(l[0].key, 'AIzaSyNotAKeyOfThisSim000000000000000000');
  assert.equal(l[2].model, 'gemini-2.5-flash');
});

test('a handshake that is not WebSocket 13 is refused with an HTTP status, no session', async () => {
  await sim.reset();
  const raw = (head) => new Promise((resolve) => {
    const s = net.connect(Number(new URL(sim.url).port), '127.0.0.1', () => s.write(head));
    let buf = '';
    s.on('data', (d) => { buf += d; });
    s.on('close', () => resolve(buf));
  });
  const v8 = await raw(`GET ${keyPath()} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
  assert.match(v8, /^HTTP\/1\.1 426 /);
  assert.match(v8, /sec-websocket-version: 13\r\n/i);
  const nokey = await raw(`GET ${keyPath()} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  assert.match(nokey, /^HTTP\/1\.1 400 /);
  assert.match(nokey, /Sec-WebSocket-Key/);
  const accept = await raw(`GET ${keyPath()} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n\x88\x80\x00\x00\x00\x00`);
  assert.match(accept, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
  assert.match(accept, /sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/i);
  assert.doesNotMatch(accept, /sec-websocket-extensions/i);
  const l = await sim.log();
  assert.deepEqual(l.map((e) => e.status), [426, 400, 101]);
});

test('an exhausted key fails at setup with Google\'s 1011 quota close, and a scripted 429 does too', async () => {
  const q = await startSim(['--keys', KEY, '--rpm', `${MODEL}:1`]);
  try {
    const url = q.url.replace(/^http/, 'ws');
    const open = (key) => { const ws = new WebSocket(`${url}${PATH}?key=${key}`); return new Promise((resolve) => { const got = []; ws.on('open', () => ws.send(JSON.stringify({ setup: { model: `models/${MODEL}` } }))); ws.on('message', (d) => { got.push(JSON.parse(d.toString())); if (got[0].setupComplete) ws.close(); }); ws.on('close', (code, reason) => resolve({ code, reason: reason.toString(), got })); }); };
    const one = await open(KEY);
    assert.ok(one.got[0]?.setupComplete, 'the first session of the minute is served');
    const two = await open(KEY);
    assert.equal(two.code, 1011);
    assert.match(two.reason, /^You exceeded your current quota, please check your plan and billing details/);
    assert.ok(Buffer.byteLength(two.reason) <= 123);
  } finally {
    await q.stop();
  }
  await sim.reset();
  await sim.script({ match: { key: KEY, method: 'bidiGenerateContent' }, reply: { status: 429 } });
  const c = connect(keyPath());
  await c.opened;
  c.send({ setup: { model: `models/${MODEL}` } });
  assert.equal((await c.close).code, 1011);
  const [e] = await liveEntries();
  assert.equal(e.scripted, true);
});

test('ephemeral tokens: accepted on the Constrained path while valid, as the owner\'s project; refused when unknown, used up or expired', async () => {
  await sim.reset();
  const mk = async (body) => {
    const r = await fetch(`${sim.url}/v1alpha/auth_tokens`, { method: 'POST', headers: { 'x-goog-api-key': KEY, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal(r.status, 200);
    const j = await r.json();
    assert.deepEqual(Object.keys(j), ['name'], 'expireTime, newSessionExpireTime and uses are input only');
    assert.match(j.name, /^auth_tokens\/[a-z0-9]{24}$/);
    return j.name;
  };
  const tok = await mk({ uses: 1 });
  const c = connect(`${CONSTRAINED}?access_token=${tok}`);
  await c.opened;
  c.send({ setup: { model: `models/${MODEL}` } });
  await c.next((m) => m.setupComplete, 'setupComplete');
  c.send(turn('hi with a token'));
  await c.next((m) => m.serverContent?.turnComplete, 'turnComplete');
  c.ws.close();
  await c.close;

  const again = connect(`${CONSTRAINED}?access_token=${tok}`); // one use only
  await again.opened;
  assert.equal((await again.close).code, 1008);
  const unknown = connect(`${CONSTRAINED}?access_token=auth_tokens/nosuchtoken`);
  await unknown.opened;
  assert.equal((await unknown.close).code, 1008);
  const past = await mk({ uses: 0, expireTime: new Date(Date.now() - 1000).toISOString() });
  const expired = connect(`${CONSTRAINED}?access_token=${past}`);
  await expired.opened;
  assert.equal((await expired.close).code, 1008);
  const bad = await fetch(`${sim.url}/v1alpha/auth_tokens`, { method: 'POST', headers: { 'x-goog-api-key': 'AIzaSyNotAKeyOfThisSim000000000000000000' }, body: '{}' });
  assert.equal(bad.status, 400);

  const l = await waitFor('the token sessions', async () => { const x = await liveEntries(); return x.length === 4 && x.every((e) => e.live.closed_ms) && x; });
  assert.equal(l[0].key, KEY, 'a token session is the project of the key that made the token');
  assert.equal(l[0].live.token, tok);
  assert.equal(l[0].method, 'bidiGenerateContentConstrained');
  assert.equal(l[0].version, 'v1alpha');
  assert.equal(l[0].live.turns, 1);
  assert.deepEqual(l.slice(1).map((e) => e.live.close_code), [1008, 1008, 1008]);
});

test('@google/genai ai.live.connect against the sim: one text turn with its usage', async () => {
  await sim.reset();
  const ai = new GoogleGenAI({ apiKey: KEY, httpOptions: { baseUrl: sim.url } });
  const got = [];
  let closed;
  const session = await ai.live.connect({
    model: MODEL,
    config: { responseModalities: [Modality.TEXT] },
    callbacks: { onmessage: (m) => got.push(m), onclose: (e) => { closed = e; } },
  });
  session.sendClientContent({ turns: 'Hello from the SDK' });
  const done = await waitFor('turnComplete', () => got.find((m) => m.serverContent?.turnComplete));
  const text = got.filter((m) => m.serverContent?.modelTurn).map((m) => m.text).join('');
  assert.ok(text.length > 0);
  assert.ok(done.usageMetadata.promptTokenCount > 0);
  assert.ok(done.usageMetadata.responseTokenCount > 0);
  assert.equal(done.usageMetadata.totalTokenCount, done.usageMetadata.promptTokenCount + done.usageMetadata.responseTokenCount);
  session.close();
  await waitFor('onclose', () => closed);
  const [e] = await waitFor('the closed session', async () => { const l = await liveEntries(); return l[0]?.live.closed_ms && l; });
  assert.equal(e.key, KEY);
  assert.equal(e.model, MODEL);
  assert.equal(e.live.turns, 1);
});

test('the session table is bounded: with 256 sessions open the next handshake is a 503, and a closed one makes room', async () => {
  const b = await startSim(['--keys', KEY]);
  const url = b.url.replace(/^http/, 'ws');
  const open = () => new Promise((resolve) => {
    const ws = new WebSocket(`${url}${PATH}?key=${KEY}`);
    ws.on('open', () => resolve({ ws, status: 101 }));
    ws.on('unexpected-response', (req, res) => { resolve({ ws, status: res.statusCode }); res.resume(); });
    ws.on('error', () => {});
  });
  const all = [];
  try {
    for (let i = 0; i < 256; i++) all.push(await open());
    assert.ok(all.every((x) => x.status === 101));
    const over = await open();
    assert.equal(over.status, 503);
    all[0].ws.close();
    await waitFor('a free slot', async () => (await (await fetch(`${b.url}/_sim/log`)).json()).requests.some((e) => e.live?.closed_ms));
    const again = await open();
    assert.equal(again.status, 101);
    all.push(again);
  } finally {
    for (const x of all) x.ws.terminate();
    await b.stop();
  }
});

test('@google/genai with an ephemeral token: authTokens.create, then ai.live.connect on the Constrained path', async () => {
  await sim.reset();
  const owner = new GoogleGenAI({ apiKey: KEY, httpOptions: { baseUrl: sim.url, apiVersion: 'v1alpha' } });
  const token = await owner.authTokens.create({ config: { uses: 1, liveConnectConstraints: { model: MODEL } } });
  assert.match(token.name, /^auth_tokens\//);
  const ai = new GoogleGenAI({ apiKey: token.name, httpOptions: { baseUrl: sim.url, apiVersion: 'v1alpha' } });
  const got = [];
  let closed;
  const warn = console.warn;
  console.warn = () => {}; // the SDK warns that ephemeral tokens are experimental
  let session;
  try {
    session = await ai.live.connect({
      model: MODEL,
      config: { responseModalities: [Modality.TEXT] },
      callbacks: { onmessage: (m) => got.push(m), onclose: (e) => { closed = e; } },
    });
  } finally {
    console.warn = warn;
  }
  session.sendClientContent({ turns: 'Hello with a token' });
  await waitFor('turnComplete', () => got.find((m) => m.serverContent?.turnComplete));
  session.close();
  await waitFor('onclose', () => closed);
  const l = await waitFor('the closed session', async () => { const x = await liveEntries(); return x[0]?.live.closed_ms && x; });
  assert.equal(l[0].path, `/${CONSTRAINED}`, 'the SDK asks for //ws/..., logged as received');
  assert.equal(l[0].key, KEY);
  assert.equal(l[0].live.token, token.name);
});
