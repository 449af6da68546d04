// Credentials in upstreams.gemini.base_url (https://user:password@host, for an upstream
// gateway behind basic authentication): skiff's own client sends them as basic
// authorization, percent-decoded as curl did, on every call (the relay's, the probe's,
// `skiff doctor`'s, the catalog refresh's), never in the Host header, and never in a log
// line, an answer or doctor's output. Over plain http and over TLS, against a node server
// that records what it received.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { startServe, tlsCerts, run, sleep } from './lib.mjs';

const KEY = 'AIzaSyCredentialsKey0000000000000000001';
const TOKEN = 'sk-credentials-test-0123456789abcdef';
const USER = 'gate@way';
const PASS = 'Pa:ss w0rd!';
// As written in a URL: '@' ':' and ' ' percent-encoded.
const USERINFO = `${encodeURIComponent(USER)}:${encodeURIComponent(PASS)}`;
const BASIC = `Basic ${Buffer.from(`${USER}:${PASS}`).toString('base64')}`;
const GEN = '/v1beta/models/gemini-2.5-flash:generateContent';
const ANSWER = JSON.stringify({ candidates: [{ content: { parts: [{ text: 'Behind the gate.' }], role: 'model' }, finishReason: 'STOP', index: 0 }] });
const MODELS = JSON.stringify({ models: [{ name: 'models/gemini-2.5-flash', inputTokenLimit: 1048576, outputTokenLimit: 65536, supportedGenerationMethods: ['generateContent'] }] });
const CLEAN_ENV = { GEMINI_API_KEYS: '', SKIFF_TOKENS: '', SKIFF_LISTEN: '', SKIFF_GEMINI_BASE_URL: '' };

async function startUpstream(tls) {
  const up = { seen: [] };
  const handler = (req, res) => {
    req.resume();
    req.on('end', () => {
      up.seen.push({ method: req.method, url: req.url, host: req.headers.host, auth: req.headers.authorization, key: req.headers['x-goog-api-key'] });
      if (req.headers.authorization !== BASIC) {
        res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Basic realm="gate"' });
        res.end('no');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8' });
      res.end(req.url.startsWith('/v1beta/models?') ? MODELS : ANSWER);
    });
  };
  const c = tlsCerts();
  const server = tls ? https.createServer({ key: c.key, cert: c.cert }, handler) : http.createServer(handler);
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  up.port = server.address().port;
  up.host = tls ? `localhost:${up.port}` : `127.0.0.1:${up.port}`;
  up.url = `${tls ? 'https' : 'http'}://${USERINFO}@${up.host}`;
  up.close = () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); });
  return up;
}

function config(baseUrl, extra = '') {
  return `
tokens:
  - {name: tester, token: ${TOKEN}}
upstreams:
  gemini:
    base_url: "${baseUrl}"
    keys: [${KEY}]
    ca_file: ${tlsCerts().caFile}
retry: {max_attempts: 2, base_delay_ms: 10, max_delay_ms: 40, deadline_ms: 8000}
storage: {sqlite: ""}
workers: 1
${extra}`;
}

function noSecret(text, where) {
  for (const s of [PASS, encodeURIComponent(PASS), BASIC.slice(6), KEY, TOKEN])
    assert.ok(!text.includes(s), `a secret (${s.slice(0, 4)}...) appeared in ${where}`);
}

async function post(serve) {
  const r = await fetch(`${serve.url}${GEN}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-goog-api-key': TOKEN },
    body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hello' }] }] }),
  });
  return { status: r.status, text: await r.text() };
}

for (const tls of [false, true]) {
  const scheme = tls ? 'https' : 'http';
  test(`${scheme}:// base_url with user:password@: basic authorization on every call, the Host without them, no secret anywhere`, async () => {
    const up = await startUpstream(tls);
    try {
      const serve = await startServe(config(up.url, 'catalog: {refresh_s: 3600}\n'));
      try {
        for (let i = 0; i < 2; i++) {
          const r = await post(serve);
          assert.equal(r.status, 200, r.text);
          assert.equal(r.text, ANSWER);
          noSecret(r.text, 'an answer');
        }
        // The catalog refresh at start went the same way.
        for (let i = 0; i < 100 && !up.seen.some((s) => s.url.startsWith('/v1beta/models?')); i++) await sleep(50);
        const gens = up.seen.filter((s) => s.url === GEN);
        const lists = up.seen.filter((s) => s.url.startsWith('/v1beta/models?'));
        assert.equal(gens.length, 2, JSON.stringify(up.seen));
        assert.ok(lists.length >= 1, JSON.stringify(up.seen));
        for (const s of [...gens, ...lists]) {
          assert.equal(s.auth, BASIC);
          assert.equal(s.host, up.host);
          assert.equal(s.key, KEY);
        }
      } finally {
        await serve.stop();
        noSecret(serve.stdout + serve.stderr, 'serve\'s logs');
      }
    } finally {
      await up.close();
    }
  });
}

test('wrong credentials in base_url: the upstream\'s 401 comes back, and the password is in no answer or log', async () => {
  const up = await startUpstream(false);
  try {
    const serve = await startServe(config(`http://${encodeURIComponent(USER)}:wrong${encodeURIComponent(PASS)}@${up.host}`));
    try {
      const r = await post(serve);
      assert.notEqual(r.status, 200, r.text);
      noSecret(r.text, 'an answer');
      assert.ok(!r.text.includes(`wrong${encodeURIComponent(PASS)}`));
      assert.ok(up.seen.length >= 1);
      assert.notEqual(up.seen[0].auth, BASIC);
      assert.match(up.seen[0].auth, /^Basic /);
    } finally {
      await serve.stop();
      noSecret(serve.stdout + serve.stderr, 'serve\'s logs');
      assert.ok(!(serve.stdout + serve.stderr).includes(`wrong${encodeURIComponent(PASS)}`));
    }
  } finally {
    await up.close();
  }
});

test('an unreachable base_url with credentials: the 502 and the logs name the host, not the password', async () => {
  const serve = await startServe(config(`http://${USERINFO}@127.0.0.1:1`));
  try {
    const r = await post(serve);
    assert.equal(r.status, 502, r.text);
    assert.match(JSON.parse(r.text).error.message, /127\.0\.0\.1:1/);
    noSecret(r.text, 'an answer');
  } finally {
    await serve.stop();
    noSecret(serve.stdout + serve.stderr, 'serve\'s logs');
  }
});

test('skiff doctor with credentials in base_url: basic authorization on its call, none in its output', async () => {
  const up = await startUpstream(true);
  try {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-cred-doctor-'));
    const cfg = join(dir, 'skiff.yaml');
    writeFileSync(cfg, `listen: 127.0.0.1:0\n${config(up.url)}`);
    const r = await run(['doctor', '--config', cfg], { env: CLEAN_ENV });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /checking key#1 \(1\/1\) \.\.\. valid/);
    noSecret(r.stdout + r.stderr, 'doctor\'s output');
    assert.ok(up.seen.some((s) => s.url === '/v1beta/models?pageSize=1' && s.auth === BASIC && s.host === up.host), JSON.stringify(up.seen));
  } finally {
    await up.close();
  }
});
