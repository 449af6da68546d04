// `skiff doctor` against `skiff sim` with good, invalid, region-blocked, denied and
// rate-limited keys, and `skiff explain` for every status of the guide's table (issue 5).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { startSim, run, sleep, SKIFF } from './lib.mjs';

const GOOD = 'AIzaSyDoctorGood0000000000000000000001';
const REGION = 'AIzaSyDoctorRegion00000000000000000002';
const DENIED = 'AIzaSyDoctorDenied00000000000000000003';
const INVALID = 'AIzaSyDoctorNotKnownToTheSim000000004';
const DAILY = 'AIzaSyDoctorDaily000000000000000000005';
const MINUTE = 'AIzaSyDoctorMinute00000000000000000006';
const ALL_KEYS = [GOOD, REGION, DENIED, INVALID, DAILY, MINUTE];
let sim, dir;

// The environment of a developer must not change what doctor reads.
const CLEAN_ENV = { GEMINI_API_KEYS: '', SKIFF_TOKENS: '', SKIFF_LISTEN: '', SKIFF_GEMINI_BASE_URL: '' };

function writeConfig(name, text) {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'skiff-doctor-'));
  sim = await startSim(['--keys', `${GOOD},${REGION}=region_blocked,${DENIED}=denied,${DAILY},${MINUTE}`]);
});

after(async () => {
  await sim.stop();
});

test('doctor reports each key by label, with a summary, and exits 0 when one works', async () => {
  await sim.reset();
  await sim.script({ match: { key: DAILY, method: 'models.list' }, reply: { quota: 'day' }, times: 0 });
  await sim.script({ match: { key: MINUTE, method: 'models.list' }, reply: { quota: 'minute', retryDelay: 17 }, times: 0 });
  const cfg = writeConfig('mixed.yaml', `
upstreams:
  gemini:
    base_url: ${sim.url}
    keys:
      - {key: ${GOOD}, label: good}
      - {key: ${REGION}, label: eu-office}
      - {key: ${DENIED}, label: restricted}
      - {key: ${INVALID}, label: typo}
      - {key: ${DAILY}, label: free-daily}
      - {key: ${MINUTE}, label: free-minute}
storage: {sqlite: ""}
`);
  const r = await run(['doctor', '--config', cfg], { env: CLEAN_ENV });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const out = r.stdout;
  // A progress line per key, by label.
  assert.match(out, /checking good \(1\/6\) \.\.\. valid/);
  assert.match(out, /checking eu-office \(2\/6\) \.\.\. region-blocked/);
  assert.match(out, /checking restricted \(3\/6\) \.\.\. no permission/);
  assert.match(out, /checking typo \(4\/6\) \.\.\. invalid/);
  assert.match(out, /checking free-daily \(5\/6\) \.\.\. rate-limited \(per-day\)/);
  assert.match(out, /checking free-minute \(6\/6\) \.\.\. rate-limited \(per-minute\) \(HTTP 429, free again in 17 s\)/);
  // The summary table and the fixes.
  assert.match(out, /^KEY\s+RESULT\s+DETAIL$/m);
  assert.match(out, /^typo\s+invalid\s+HTTP 400 INVALID_ARGUMENT/m);
  assert.match(out, /region-blocked: Enable billing .*upstreams\.gemini\.proxy/);
  assert.match(out, /rate-limited \(per-day\): .*midnight America\/Los_Angeles/);
  assert.match(out, /catalog: \d+ models listed by the upstream \(via good\)/);
  assert.match(out, /1 of 6 keys works\./);
  // Keys never appear, whatever the outcome.
  for (const k of ALL_KEYS) {
    assert.ok(!out.includes(k) && !r.stderr.includes(k), 'a key leaked into doctor output');
  }
  // One cheap call per key (plus the catalog), each with its key in the header only.
  const log = await sim.log();
  const checks = log.filter((e) => e.method === 'models.list');
  assert.equal(checks.length, 7);
  assert.ok(checks.every((e) => e.path === '/v1beta/models'));
});

test('doctor exits 1 when no key works', async () => {
  await sim.reset();
  const cfg = writeConfig('bad.yaml', `
upstreams:
  gemini:
    base_url: ${sim.url}
    keys: [${INVALID}, ${DENIED}]
storage: {sqlite: ""}
`);
  const r = await run(['doctor', '--config', cfg], { env: CLEAN_ENV });
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stdout, /0 of 2 keys work\./);
});

test('doctor reports an unreachable upstream and a proxy', async () => {
  const cfg = writeConfig('down.yaml', `
upstreams:
  gemini:
    base_url: http://127.0.0.1:1
    keys: [${GOOD}]
    proxy: ""
storage: {sqlite: ""}
`);
  const r = await run(['doctor', '--config', cfg], { env: CLEAN_ENV });
  assert.equal(r.code, 1);
  assert.match(r.stdout, /checking key#1 \(1\/1\) \.\.\. unreachable/);
  assert.match(r.stdout, /unreachable: check the network, DNS and upstreams\.gemini\.proxy/);
});

test('doctor exits 2 on a configuration that does not load', async () => {
  const cfg = writeConfig('broken.yaml', 'retry:\n  max_atempts: 3\n');
  const r = await run(['doctor', '--config', cfg], { env: CLEAN_ENV });
  assert.equal(r.code, 2);
  assert.match(r.stdout, /broken\.yaml:2: retry: unknown key 'max_atempts'; did you mean 'max_attempts'/);
});

test('explain prints meaning, cause and fix for every status of the guide', async () => {
  const cases = [
    ['400', /400 INVALID_ARGUMENT \(malformed request\)/, /\/v1beta/],
    ['FAILED_PRECONDITION', /400 FAILED_PRECONDITION \(region or billing\)/, /billing/],
    ['403', /403 PERMISSION_DENIED \(no permission\)/, /Generative Language API/],
    ['404', /404 NOT_FOUND \(not found\)/, /GET \/v1beta\/models/],
    ['429', /429 RESOURCE_EXHAUSTED \(per-day quota\)/, /midnight America\/Los_Angeles/],
    ['RESOURCE_EXHAUSTED', /429 RESOURCE_EXHAUSTED \(per-minute quota\)/, /RetryInfo/],
    ['500', /500 INTERNAL/, /reduce the input context/],
    ['503', /503 UNAVAILABLE/, /Pro to Flash/],
    ['504', /504 DEADLINE_EXCEEDED/, /larger timeout/],
  ];
  for (const [arg, heading, fix] of cases) {
    const r = await run(['explain', arg]);
    assert.equal(r.code, 0, `${arg}: ${r.stderr}`);
    assert.match(r.stdout, heading, arg);
    assert.match(r.stdout, fix, arg);
    assert.match(r.stdout, /What it means: .+\n\nLikely cause: .+\n\nFix: /, arg);
  }
  const unknown = await run(['explain', '418']);
  assert.equal(unknown.code, 1);
});

test('explain - reads the sim\'s real error bodies and whole HTTP responses', async () => {
  await sim.reset();
  await sim.script({ match: { key: DAILY }, reply: { quota: 'day' }, times: 0 });
  const call = async (key, model = 'gemini-2.5-flash') => {
    const res = await fetch(`${sim.url}/v1beta/models/${model}:generateContent`, {
      method: 'POST',
      headers: { 'x-goog-api-key': key, 'content-type': 'application/json' },
      body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hi' }] }] }),
    });
    const head = `HTTP/1.1 ${res.status} X\r\ncontent-type: application/json\r\n\r\n`;
    return head + await res.text();
  };
  const expect = [
    [await call(DAILY), /\(per-day quota\)/, /Resets: +at midnight America\/Los_Angeles/],
    [await call(REGION), /\(region or billing\)/, /User location is not supported/],
    [await call(DENIED), /\(no permission\)/, /The caller does not have permission/],
    [await call(INVALID), /\(invalid API key\)/, /API key not valid/],
    [await call(GOOD, 'gemini-2.5-flsh'), /404 NOT_FOUND/, /is not found for API version v1beta/],
  ];
  for (const [input, kind, detail] of expect) {
    const r = await run(['explain', '-'], { input });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, kind);
    assert.match(r.stdout, detail);
  }
  const minute = await run(['explain', '-'], {
    input: JSON.stringify({ error: { code: 429, status: 'RESOURCE_EXHAUSTED', message: 'x', details: [
      { '@type': 'type.googleapis.com/google.rpc.QuotaFailure', violations: [{ quotaId: 'GenerateRequestsPerMinutePerProjectPerModel-FreeTier', quotaValue: '10' }] },
      { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '21s' }] } }),
  });
  assert.match(minute.stdout, /\(per-minute quota\)/);
  assert.match(minute.stdout, /Retry in: +21 s/);
});

// Ctrl-C: a command waiting on stdin or on an upstream that never answers stops at once
// (the servers take signals on their own thread; the other commands keep the default).
test('Ctrl-C stops explain reading stdin and doctor waiting on a silent upstream', async () => {
  const silent = net.createServer(() => {}); // accepts, never answers
  await new Promise((r) => silent.listen(0, '127.0.0.1', r));
  const cfg = writeConfig('silent.yaml', `upstreams: {gemini: {base_url: "http://127.0.0.1:${silent.address().port}", keys: [${GOOD}]}}\nstorage: {sqlite: ""}\n`);
  try {
    for (const args of [['explain', '-'], ['doctor', '--config', cfg]]) {
      const proc = spawn(SKIFF, args, { env: { ...process.env, ...CLEAN_ENV }, stdio: ['pipe', 'pipe', 'pipe'] });
      const exited = new Promise((r) => proc.on('exit', (code, signal) => r({ code, signal })));
      await sleep(300); // explain is reading stdin (left open); doctor is waiting on the upstream
      const t0 = Date.now();
      proc.kill('SIGINT');
      const end = await Promise.race([exited, sleep(3000).then(() => null)]);
      if (!end) proc.kill('SIGKILL');
      assert.ok(end, `skiff ${args[0]} ignored SIGINT`);
      assert.equal(end.signal, 'SIGINT', `skiff ${args[0]}`);
      assert.ok(Date.now() - t0 < 3000);
    }
  } finally {
    silent.close();
  }
});
