// Storage (issue 11 items 9 and 10): key state survives a flood of usage and a database that
// stops taking writes for a while; skiff keeps serving, logs the failure once, and writes
// the state once the database takes writes again.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSim, startServe, run, sleep, logged } from './lib.mjs';

const BAD = 'NotAGeminiKey-store-000000000000000001';
const GOOD = 'AIzaStoreKeyGood000000000000000000000001';
let sim;

before(async () => { sim = await startSim(['--rpm', 'unlimited', '--tpm', 'unlimited', '--rpd', 'unlimited']); });
after(async () => { await sim?.stop(); });

const config = (db) => `
upstreams: {gemini: {base_url: ${sim.url}, keys: [${BAD}, ${GOOD}]}}
storage: {sqlite: ${db}}
workers: 1
`;

const hello = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'Say hello' }] }] });
const gen = (serve) => fetch(`${serve.url}/v1beta/models/gemini-2.5-flash:generateContent`, {
  method: 'POST', headers: { 'content-type': 'application/json' }, body: hello, signal: AbortSignal.timeout(5000),
});

// Another process (the sqlite3 shell) takes the database's write lock and keeps it until
// release(): every write skiff tries meanwhile fails with SQLITE_BUSY once its wait is over.
async function holdWriteLock(db) {
  const sh = spawn('sqlite3', [db], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  sh.stdout.on('data', (d) => { out += d; });
  sh.stdin.write("BEGIN EXCLUSIVE;\nSELECT 'locked';\n");
  for (let i = 0; i < 100 && !out.includes('locked'); i++) await sleep(50);
  assert.ok(out.includes('locked'), 'the sqlite3 shell did not take the lock');
  return {
    release: () => new Promise((r) => { sh.on('exit', r); sh.stdin.end('ROLLBACK;\n.quit\n'); }),
  };
}

function sqlite(db, sql) {
  return new Promise((resolve) => {
    const p = spawn('sqlite3', [db, sql]);
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.on('exit', () => resolve(out.trim()));
  });
}

const count = (text, re) => (text.match(re) || []).length;

test('a retirement made while the database refuses writes is written later, survives a flood of usage and a restart', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-store-'));
  const db = join(dir, 'skiff.db');
  let serve = await startServe(config(db));
  let ok = 0;
  try {
    const lock = await holdWriteLock(db);
    const t0 = Date.now();
    // The first request finds the bad key (retired, and retried on the good one) ...
    const first = await gen(serve);
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('x-skiff-attempts'), '2');
    await first.text();
    ok++;
    // ... then a flood of usage, answered as fast as ever while the database is locked.
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next++ < 2000) {
        const r = await gen(serve);
        assert.equal(r.status, 200);
        await r.arrayBuffer();
        ok++;
      }
    }));
    // Hold the lock past several attempts (and past the 5 s an older skiff waited once).
    while (Date.now() - t0 < 6500) await sleep(100);
    assert.equal(count(serve.stderr, /"event":"store_write_failed"/g), 1, 'the failure was not logged exactly once');
    assert.match(serve.stderr, /"event":"store_write_failed"[^\n]*"error":"database is locked"/);
    assert.equal(count(serve.stderr, /"event":"store_write_recovered"/g), 0);
    await lock.release();

    // Without a restart or a request, the state lands once the database takes writes.
    for (let i = 0; i < 200 && !/"event":"store_write_recovered"/.test(serve.stderr); i++) await sleep(100);
    assert.match(serve.stderr, /"event":"store_write_recovered"/);
    assert.equal(count(serve.stderr, /"event":"store_write_failed"/g), 1);
    for (let i = 0; i < 50 && (await sqlite(db, 'SELECT count(*) FROM key_state WHERE retired = 1')) !== '1'; i++) await sleep(100);
    assert.equal(await sqlite(db, "SELECT retired FROM key_state WHERE model = '*'"), '1');
  } finally {
    await serve.stop();
  }
  // Every request was counted: usage is summed in memory, never dropped.
  assert.equal(await sqlite(db, 'SELECT sum(requests) FROM key_usage'), String(ok));

  // After a restart the bad key is still retired: no request goes to it.
  await sim.reset();
  serve = await startServe(config(db));
  try {
    for (let i = 0; i < 5; i++) {
      const r = await gen(serve);
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('x-skiff-attempts'), '1');
      await r.text();
    }
    assert.equal((await sim.log()).filter((e) => e.key === BAD).length, 0, 'the retired key was used again');
  } finally {
    await serve.stop();
  }
  const keys = await run(['keys', '--config', join(serve.dir, 'skiff.yaml')]);
  assert.equal(keys.code, 0, keys.stderr);
  assert.match(keys.stdout, /key#1\s+\*\s+retired/);
});

// Two skiffs sharing one storage.sqlite (issue 13, the state backend): what one learns about
// a key reaches the other while both run, through the SQLite backend's watch of the file.
test('two instances sharing storage.sqlite: a key one retires is never tried by the other', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-store-shared-'));
  const db = join(dir, 'skiff.db');
  const a = await startServe(config(db));
  const b = await startServe(config(db));
  try {
    await sim.reset();
    const first = await gen(a);
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('x-skiff-attempts'), '2'); // A found the bad key itself
    await first.text();
    // B hears it within its watch interval (1 s), without a restart, and says so.
    await logged(b, /"event":"key_health","key":"key#1","model":"\*","state":"retired".*"from":"backend"/, 5000);
    assert.equal((await (await fetch(`${b.url}/healthz`)).json()).usable_keys, 1);
    await sim.reset();
    for (let i = 0; i < 3; i++) {
      const r = await gen(b);
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('x-skiff-attempts'), '1');
      assert.equal(r.headers.get('x-skiff-key'), 'key#2');
      await r.text();
    }
    assert.equal((await sim.log()).filter((e) => e.key === BAD).length, 0, 'B sent the retired key upstream');
  } finally {
    await b.stop();
    await a.stop();
  }
});

