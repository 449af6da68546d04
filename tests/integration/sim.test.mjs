// skiff sim (issue 3) against the wire-format reference (../shared/gemini-api.md): every
// error shape field by field, the success framings byte for byte, quotas, faults, scripted
// mode, latency, seeded reproducibility, and the official SDK's reaction to all of it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { networkInterfaces } from 'node:os';
import { GoogleGenAI, ApiError } from '@google/genai';
import { startSim, sleep } from './lib.mjs';

const KEY = 'AIzaSyTestKeySim000000000000000000001';
const SIM_ARGS = [
  '--seed', '7',
  '--keys', 'AIza*,AIzaBlocked=region_blocked,AIzaNoPerm=denied',
  // Generous limits everywhere, except the models the quota tests use.
  '--rpm', '100000,gemini-3.1-flash-lite:2,gemma-4-26b-a4b-it:0',
  '--tpm', 'unlimited,gemma-4-26b-a4b-it:0',
  '--rpd', '1000000,gemini-3.8-flash:1,gemma-4-31b-it:0,gemma-4-26b-a4b-it:0',
  // Per-model faults; every other model answers.
  '--faults', 'gemini-2.5-pro:503=1,gemini-3.6-flash:500=1,gemini-3.7-flash:504=1',
];
const UNLIMITED = ['--rpm', 'unlimited', '--tpm', 'unlimited', '--rpd', 'unlimited'];

let sim;
before(async () => { sim = await startSim(SIM_ARGS); });
after(async () => { await sim?.stop(); });

// ---- helpers ----

const JSON_CT = 'application/json; charset=UTF-8';
const pretty = (v) => JSON.stringify(v, null, 2);
const hello = (text = 'Hello there') => ({ contents: [{ role: 'user', parts: [{ text }] }] });
const LONG = 'Tell me a long story about boats, harbours, sailors and the sea at night';

// The SSE payload layout: one line, ": " after every colon, nothing after commas (§1.2).
function sseJson(v) {
  if (Array.isArray(v)) return `[${v.map(sseJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}: ${sseJson(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

// POST /{ver}/models/{model}:{method}; resolves {r, text}.
async function api(s, model, method, body, { key = KEY, headers = {}, query = '', ver = 'v1beta', raw } = {}) {
  const h = { 'content-type': 'application/json', ...headers };
  if (key !== null) h['x-goog-api-key'] = key;
  const r = await fetch(`${s.url}/${ver}/models/${model}:${method}${query}`, {
    method: 'POST', headers: h, body: raw ?? JSON.stringify(body),
  });
  return { r, text: await r.text() };
}
async function get(s, path, { key = KEY } = {}) {
  const r = await fetch(`${s.url}${path}`, { headers: key === null ? {} : { 'x-goog-api-key': key } });
  return { r, text: await r.text() };
}
const gen = (s, model, body, opts) => api(s, model, 'generateContent', body, opts);

// An error response must be exactly `expected` (§4.1): the pretty 2-space body ending in
// "}\n", in the reference's key order, with the JSON content type and no Retry-After.
function assertError({ r, text }, expected) {
  assert.equal(r.status, expected.error.code, text);
  assert.equal(r.headers.get('content-type'), JSON_CT);
  assert.equal(r.headers.get('retry-after'), null);
  assert.equal(r.headers.get('x-gemini-service-tier'), 'standard');
  assert.equal(text, pretty(expected) + '\n');
}
const gerr = (code, status, message, details) =>
  ({ error: { code, message, status, ...(details ? { details } : {}) } });

const NOT_FOUND_TEXT = (id, ver, method) =>
  `models/${id} is not found for API version ${ver}, or is not supported for ${method}. Call ListModels to see the list of available models and their supported methods.`;
const UNREGISTERED = "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.";
const UNAUTH_401 = 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.';
const MSG_500 = 'An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting';
const MSG_503 = 'The model is overloaded. Please try again later.';
const MSG_504 = 'Deadline expired before operation could complete.';
const KEY_INVALID = 'API key not valid. Please pass a valid API key.';
const KEY_INVALID_BODY = gerr(400, 'INVALID_ARGUMENT', KEY_INVALID, [
  {
    '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
    reason: 'API_KEY_INVALID',
    domain: 'googleapis.com',
    metadata: { service: 'generativelanguage.googleapis.com' },
  },
  { '@type': 'type.googleapis.com/google.rpc.LocalizedMessage', locale: 'en-US', message: KEY_INVALID },
]);
const QUOTA_HEAD = 'You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current usage, head to: https://ai.dev/rate-limit. \n';
const METRIC_REQ = 'generativelanguage.googleapis.com/generate_content_free_tier_requests';
const METRIC_TOK = 'generativelanguage.googleapis.com/generate_content_free_tier_input_token_count';
const HELP = {
  '@type': 'type.googleapis.com/google.rpc.Help',
  links: [{ description: 'Learn more about Gemini API quotas', url: 'https://ai.google.dev/gemini-api/docs/rate-limits' }],
};

// A 2026-form 429 (§4.5): checks every field and returns the "Please retry in" seconds
// and the RetryInfo seconds.
function assert429(res, violations) {
  const { r, text } = res;
  assert.equal(r.status, 429, text);
  assert.equal(r.headers.get('retry-after'), null, '429s carry no Retry-After header');
  const body = JSON.parse(text);
  const lines = violations.map((v) => `* Quota exceeded for metric: ${v.metric}, limit: ${v.limit}, model: ${v.model}\n`).join('');
  const m = body.error.message.match(/^([\s\S]*)Please retry in (\d+(?:\.\d+)?)s\.$/);
  assert.ok(m, `429 message: ${body.error.message}`);
  assert.equal(m[1], QUOTA_HEAD + lines);
  const rd = body.error.details?.[2]?.retryDelay ?? '';
  assert.match(rd, /^\d+s$/, 'RetryInfo.retryDelay is a whole-second Duration');
  const expected = gerr(429, 'RESOURCE_EXHAUSTED', body.error.message, [
    HELP,
    {
      '@type': 'type.googleapis.com/google.rpc.QuotaFailure',
      violations: violations.map((v) => ({
        quotaMetric: v.metric, quotaId: v.id,
        quotaDimensions: { location: 'global', model: v.model },
        quotaValue: String(v.limit),
      })),
    },
    { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: rd },
  ]);
  assertError(res, expected);
  const retry = Number(m[2]), whole = Number(rd.slice(0, -1));
  assert.equal(whole, Math.floor(retry), `RetryInfo ${rd} is "Please retry in ${m[2]}s" truncated`);
  return { retry, whole };
}

// Seconds from now to the next midnight in America/Los_Angeles (23, 24 or 25 h days).
function secondsToPacificMidnight(now = Date.now()) {
  const fmt = new Intl.DateTimeFormat('en-US', {
    timeZone: 'America/Los_Angeles', hourCycle: 'h23',
    year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
  });
  const parts = (t) => Object.fromEntries(fmt.formatToParts(t).map((p) => [p.type, p.value]));
  const p = parts(now);
  // Tomorrow's calendar date in LA; its midnight is 07:00 or 08:00 UTC.
  const tomorrow = new Date(Date.UTC(+p.year, +p.month - 1, +p.day + 1));
  for (const off of [7, 8]) {
    const t = Date.UTC(tomorrow.getUTCFullYear(), tomorrow.getUTCMonth(), tomorrow.getUTCDate(), off);
    const q = parts(t);
    if (q.hour === '00' && q.minute === '00' && +q.day === tomorrow.getUTCDate()) return (t - now) / 1000;
  }
  throw new Error('no Pacific midnight found');
}

async function logOf(s) {
  const r = await fetch(`${s.url}/_sim/log`);
  assert.equal(r.status, 200);
  return (await r.json()).requests;
}

// ---- 1. error shapes ----

test('credentials: 403 without a key, 401 for Bearer, 400 API_KEY_INVALID, region-blocked and denied keys', async () => {
  await sim.reset();
  const m = 'gemini-2.5-flash';
  assertError(await gen(sim, m, hello(), { key: null }), gerr(403, 'PERMISSION_DENIED', UNREGISTERED));
  // Bearer on a native endpoint is 401 even with a valid ?key= beside it (§1.4).
  assertError(await gen(sim, m, hello(), { key: null, headers: { authorization: `Bearer ${KEY}` } }),
    gerr(401, 'UNAUTHENTICATED', UNAUTH_401));
  assertError(await gen(sim, m, hello(), { key: null, query: `?key=${KEY}`, headers: { authorization: `Bearer ${KEY}` } }),
    gerr(401, 'UNAUTHENTICATED', UNAUTH_401));
  assertError(await gen(sim, m, hello(), { key: 'NotAGoogleKey123' }), KEY_INVALID_BODY);
  assertError(await gen(sim, m, hello(), { key: 'AIzaBlocked' }),
    gerr(400, 'FAILED_PRECONDITION', 'User location is not supported for the API use.'));
  assertError(await gen(sim, m, hello(), { key: 'AIzaNoPerm' }),
    gerr(403, 'PERMISSION_DENIED', 'The caller does not have permission'));
  // The same checks guard every method, including the GETs.
  assertError(await get(sim, '/v1beta/models', { key: null }), gerr(403, 'PERMISSION_DENIED', UNREGISTERED));
  assertError(await api(sim, m, 'countTokens', hello(), { key: 'NotAGoogleKey123' }), KEY_INVALID_BODY);
  // An error before an SSE stream is a plain JSON error, not an event (§4.5).
  assertError(await api(sim, m, 'streamGenerateContent', hello(), { key: null, query: '?alt=sse' }),
    gerr(403, 'PERMISSION_DENIED', UNREGISTERED));
  // ?key= is accepted like the header.
  const ok = await gen(sim, m, hello(), { key: null, query: `?key=${KEY}` });
  assert.equal(ok.r.status, 200, ok.text);
  const log = await logOf(sim);
  assert.deepEqual(log.map((e) => e.status), [403, 401, 401, 400, 400, 403, 403, 400, 403, 200]);
  assert.equal(log[0].key, null);
  assert.equal(log[3].key, 'NotAGoogleKey123');
  assert.equal(log.at(-1).key, KEY);
});

test('unknown model: 404 with the method-specific text, and models.get\'s own text', async () => {
  for (const method of ['generateContent', 'streamGenerateContent', 'countTokens', 'embedContent', 'batchEmbedContents']) {
    const body = method.includes('mbed') ? { content: { parts: [{ text: 'x' }] } } : hello();
    const query = method === 'streamGenerateContent' ? '?alt=sse' : '';
    assertError(await api(sim, 'gemini-pro', method, body, { query }),
      gerr(404, 'NOT_FOUND', NOT_FOUND_TEXT('gemini-pro', 'v1beta', method)));
  }
  assertError(await gen(sim, 'gemini-pro', hello(), { ver: 'v1' }),
    gerr(404, 'NOT_FOUND', NOT_FOUND_TEXT('gemini-pro', 'v1', 'generateContent')));
  // Previews are v1beta only; a generation model does not embed.
  assertError(await gen(sim, 'gemini-3-flash-preview', hello(), { ver: 'v1' }),
    gerr(404, 'NOT_FOUND', NOT_FOUND_TEXT('gemini-3-flash-preview', 'v1', 'generateContent')));
  assertError(await api(sim, 'gemini-2.5-flash', 'embedContent', { content: { parts: [{ text: 'x' }] } }),
    gerr(404, 'NOT_FOUND', NOT_FOUND_TEXT('gemini-2.5-flash', 'v1beta', 'embedContent')));
  // Dated ids are not addressable (§6.2); models.get has its own wording (§4.4).
  assertError(await get(sim, '/v1beta/models/gemini-2.5-flash-001'),
    gerr(404, 'NOT_FOUND', 'Model is not found: models/gemini-2.5-flash-001 for api version v1beta'));
  assertError(await get(sim, '/v1/models/gemini-pro'),
    gerr(404, 'NOT_FOUND', 'Model is not found: models/gemini-pro for api version v1'));
});

test('errors on the JSON-array stream form are wrapped in an array: [{\\n  "error": ...}\\n] (§0.4, §4.5)', async () => {
  const res = await api(sim, 'gemini-pro', 'streamGenerateContent', hello());
  assert.equal(res.r.status, 404);
  assert.equal(res.r.headers.get('content-type'), JSON_CT);
  const inner = pretty(gerr(404, 'NOT_FOUND', NOT_FOUND_TEXT('gemini-pro', 'v1beta', 'streamGenerateContent')));
  // The element is laid out like a stream element: "[{" first, "}\n]" last. (The reference
  // does not say whether a newline follows the "]"; either is accepted.)
  assert.equal(res.text.replace(/\n$/, ''), `[${inner}\n]`);
  const noKey = await api(sim, 'gemini-2.5-flash', 'streamGenerateContent', hello(), { key: null });
  assert.equal(noKey.r.status, 403);
  assert.equal(noKey.text.replace(/\n$/, ''), `[${pretty(gerr(403, 'PERMISSION_DENIED', UNREGISTERED))}\n]`);
});

test('validation 400s: empty contents, temperature, topP, candidateCount, maxOutputTokens, thinking, unknown fields, invalid JSON', async () => {
  const m = 'gemini-2.5-flash';
  const cfg = (generationConfig) => ({ ...hello(), generationConfig });
  const bad = (message, details) => gerr(400, 'INVALID_ARGUMENT', message, details);
  assertError(await gen(sim, m, { contents: [] }), bad('* GenerateContentRequest.contents: contents is not specified\n'));
  assertError(await gen(sim, m, {}), bad('* GenerateContentRequest.contents: contents is not specified\n'));
  assertError(await gen(sim, m, cfg({ temperature: 5 })),
    bad('* GenerateContentRequest.generation_config.temperature: temperature must be in the range [0.0, 2.0].\n'));
  assertError(await gen(sim, m, cfg({ topP: 1.5 })),
    bad('* GenerateContentRequest.generation_config.top_p: top_p must be in the range [0.0, 1.0].\n'));
  assertError(await gen(sim, m, cfg({ candidateCount: 9 })),
    bad('* GenerateContentRequest.generation_config.candidate_count: candidate_count must be in the range [1, 8].\n'));
  // Several violations: one bullet each, joined and ended by "\n".
  assertError(await gen(sim, m, cfg({ temperature: 5, topP: 1.5 })),
    bad('* GenerateContentRequest.generation_config.temperature: temperature must be in the range [0.0, 2.0].\n'
      + '* GenerateContentRequest.generation_config.top_p: top_p must be in the range [0.0, 1.0].\n'));
  assertError(await gen(sim, m, cfg({ maxOutputTokens: 65537 })),
    bad('Unable to submit request because it has a maxOutputTokens value of 65537 but the supported range is from 1 (inclusive) to 65537 (exclusive). Update the value and try again.'));
  const atLimit = await gen(sim, m, cfg({ maxOutputTokens: 65536 }));
  assert.equal(atLimit.r.status, 200, atLimit.text);
  // The reference's verbatim unknown-field body (§4.2), nested and top-level (no "field").
  const unknown = 'Invalid JSON payload received. Unknown name "notAField" at \'generation_config\': Cannot find field.';
  assertError(await gen(sim, m, cfg({ notAField: 1 })), bad(unknown, [
    { '@type': 'type.googleapis.com/google.rpc.BadRequest', fieldViolations: [{ field: 'generation_config', description: unknown }] },
  ]));
  const top = 'Invalid JSON payload received. Unknown name "systemInstruction": Cannot find field.';
  assertError(await gen(sim, m, { ...hello(), systemInstruction: { parts: [{ text: 'x' }] } }, { ver: 'v1' }), bad(top, [
    { '@type': 'type.googleapis.com/google.rpc.BadRequest', fieldViolations: [{ description: top }] },
  ]));
  // Thinking budgets (§2.5).
  assertError(await gen(sim, 'gemini-2.5-pro', cfg({ thinkingConfig: { thinkingBudget: 0 } })),
    bad('Budget 0 is invalid. This model only works in thinking mode.'));
  assertError(await gen(sim, 'gemini-2.5-pro', cfg({ thinkingConfig: { thinkingBudget: 52428 } })),
    bad('The thinking budget (52428) is invalid.'));
  // Invalid JSON: a BadRequest whose violation has a description and no field.
  const inv = await gen(sim, m, null, { raw: '{"contents": [}' });
  const body = JSON.parse(inv.text);
  assert.match(body.error.message, /^Invalid JSON payload received\. Unexpected token\.\n/);
  assertError(inv, bad(body.error.message, [
    { '@type': 'type.googleapis.com/google.rpc.BadRequest', fieldViolations: [{ description: body.error.message }] },
  ]));
});

test('per-minute 429: Help, QuotaFailure (quotaValue a string), RetryInfo "Ns", no Retry-After; per key and model; countTokens is free', async () => {
  await sim.reset();
  const m = 'gemini-3.1-flash-lite'; // --rpm 2
  for (let i = 0; i < 3; i++) assert.equal((await api(sim, m, 'countTokens', hello())).r.status, 200, 'countTokens');
  for (let i = 0; i < 2; i++) { const ok = await gen(sim, m, hello()); assert.equal(ok.r.status, 200, ok.text); }
  const res = await gen(sim, m, hello());
  const { retry, whole } = assert429(res, [
    { metric: METRIC_REQ, id: 'GenerateRequestsPerMinutePerProjectPerModel-FreeTier', model: m, limit: 2 },
  ]);
  // The minute window opened a moment ago: about 60 s are left.
  assert.ok(retry > 50 && retry <= 60, `retry in ${retry}s`);
  assert.ok(whole >= 50 && whole <= 60);
  // Another key, or another model, has its own window.
  assert.equal((await gen(sim, m, hello(), { key: 'AIzaSyOtherKey' })).r.status, 200);
  assert.equal((await gen(sim, 'gemini-2.5-flash', hello())).r.status, 200);
  // Refused requests are not counted, so refusals keep coming as long as the window lasts.
  assert.equal((await gen(sim, m, hello())).r.status, 429);
  const log = await logOf(sim);
  assert.deepEqual(log.map((e) => e.status), [200, 200, 200, 200, 200, 429, 200, 200, 429]);
});

test('per-day 429: the PerDay quotaId and a RetryInfo until midnight America/Los_Angeles', async () => {
  await sim.reset();
  const m = 'gemini-3.8-flash'; // --rpd 1
  assert.equal((await gen(sim, m, hello())).r.status, 200);
  const res = await gen(sim, m, hello());
  const expectSecs = secondsToPacificMidnight();
  const { retry, whole } = assert429(res, [
    { metric: METRIC_REQ, id: 'GenerateRequestsPerDayPerProjectPerModel-FreeTier', model: m, limit: 1 },
  ]);
  assert.ok(whole > 0 && whole <= 86400 + 3600, `retryDelay ${whole}s`);
  assert.ok(Math.abs(retry - expectSecs) < 5, `retry in ${retry}s, but Pacific midnight is ${expectSecs.toFixed(3)}s away`);
});

test('a model with no daily quota: every request is a 429 with quotaValue "0"; a scripted minute quota with limit and delay', async () => {
  await sim.reset();
  const m = 'gemma-4-31b-it'; // --rpd 0
  for (let i = 0; i < 2; i++) {
    assert429(await gen(sim, m, hello()), [
      { metric: METRIC_REQ, id: 'GenerateRequestsPerDayPerProjectPerModel-FreeTier', model: m, limit: 0 },
    ]);
  }
  // A scripted minute quota with an explicit limit and delay.
  await sim.script({ match: { model: 'gemini-2.5-flash' }, reply: { quota: 'minute', limit: 15, retryDelay: 38.5 } });
  const { retry, whole } = assert429(await gen(sim, 'gemini-2.5-flash', hello()), [
    { metric: METRIC_REQ, id: 'GenerateRequestsPerMinutePerProjectPerModel-FreeTier', model: 'gemini-2.5-flash', limit: 15 },
  ]);
  assert.equal(whole, 38);
  assert.equal(retry, 38.5);
});

const ZERO = (model) => [
  { metric: METRIC_REQ, id: 'GenerateRequestsPerMinutePerProjectPerModel-FreeTier', model, limit: 0 },
  { metric: METRIC_TOK, id: 'GenerateContentInputTokensPerModelPerMinute-FreeTier', model, limit: 0 },
  { metric: METRIC_REQ, id: 'GenerateRequestsPerDayPerProjectPerModel-FreeTier', model, limit: 0 },
];

test('a zero quota (RPM, TPM and RPD all 0) waits until Pacific midnight, native or scripted alike', async () => {
  await sim.reset();
  // Native: --rpm/--tpm/--rpd gemma-4-26b-a4b-it:0. The longest wait is the day's.
  const native = assert429(await gen(sim, 'gemma-4-26b-a4b-it', hello()), ZERO('gemma-4-26b-a4b-it'));
  assert.ok(Math.abs(native.retry - secondsToPacificMidnight()) < 5, `native zero: retry in ${native.retry}s`);
  // Scripted {"quota": "zero"} is documented as the same 2026-form 429 and lists the same
  // per-day violation, so its default RetryInfo must be the same wait (§4.5, §5).
  await sim.script({ match: { model: 'gemini-2.5-flash' }, reply: { quota: 'zero' } });
  const scripted = assert429(await gen(sim, 'gemini-2.5-flash', hello()), ZERO('gemini-2.5-flash'));
  assert.ok(Math.abs(scripted.retry - secondsToPacificMidnight()) < 5,
    `scripted zero lists a PerDay violation but says "retry in ${scripted.retry}s"; Pacific midnight is ${secondsToPacificMidnight().toFixed(0)}s away`);
});

test('faults with per-model overrides: pro 503, 3.6-flash 500, 3.7-flash 504 (bodies per §4.5) while flash answers', async () => {
  await sim.reset();
  for (let i = 0; i < 5; i++) {
    assertError(await gen(sim, 'gemini-2.5-pro', hello(`q${i}`)), gerr(503, 'UNAVAILABLE', MSG_503));
    const ok = await gen(sim, 'gemini-2.5-flash', hello(`q${i}`));
    assert.equal(ok.r.status, 200, ok.text);
  }
  assertError(await gen(sim, 'gemini-3.6-flash', hello()), gerr(500, 'INTERNAL', MSG_500));
  assertError(await gen(sim, 'gemini-3.7-flash', hello()), gerr(504, 'DEADLINE_EXCEEDED', MSG_504));
  // An alias inherits its target's faults (gemini-flash-latest → gemini-3.6-flash).
  assertError(await gen(sim, 'gemini-flash-latest', hello()), gerr(500, 'INTERNAL', MSG_500));
  // A fault on a stream comes before the stream: a plain JSON error even with alt=sse.
  assertError(await api(sim, 'gemini-2.5-pro', 'streamGenerateContent', hello(), { query: '?alt=sse' }),
    gerr(503, 'UNAVAILABLE', MSG_503));
  const log = await logOf(sim);
  assert.deepEqual(log.map((e) => e.fault),
    ['503', null, '503', null, '503', null, '503', null, '503', null, '500', '504', '500', '503']);
});

test('scripted 5xx replies default to the API\'s own messages', async () => {
  await sim.reset();
  await sim.script([
    { match: { key: 'AIzaS500' }, reply: { status: 500 } },
    { match: { key: 'AIzaS503' }, reply: { status: 503 } },
    { match: { key: 'AIzaS504' }, reply: { status: 504 } },
  ]);
  assertError(await gen(sim, 'gemini-2.5-flash', hello(), { key: 'AIzaS500' }), gerr(500, 'INTERNAL', MSG_500));
  assertError(await gen(sim, 'gemini-2.5-flash', hello(), { key: 'AIzaS503' }), gerr(503, 'UNAVAILABLE', MSG_503));
  assertError(await gen(sim, 'gemini-2.5-flash', hello(), { key: 'AIzaS504' }), gerr(504, 'DEADLINE_EXCEEDED', MSG_504));
});

// ---- 2. success wire format ----

test('generateContent: pretty JSON, usage arithmetic, zero fields omitted, thoughts only when thinking', async () => {
  await sim.reset();
  const res = await gen(sim, 'gemini-2.5-flash', hello());
  assert.equal(res.r.status, 200, res.text);
  assert.equal(res.r.headers.get('content-type'), JSON_CT);
  assert.equal(res.r.headers.get('x-gemini-service-tier'), 'standard');
  const j = JSON.parse(res.text);
  assert.equal(res.text.replace(/\n$/, ''), pretty(j), 'pretty-printed with a 2-space indent');
  assert.deepEqual(Object.keys(j), ['candidates', 'usageMetadata', 'modelVersion', 'responseId']);
  assert.equal(j.candidates.length, 1);
  const c = j.candidates[0];
  assert.deepEqual(Object.keys(c), ['content', 'finishReason', 'index']);
  assert.equal(c.finishReason, 'STOP');
  assert.equal(c.index, 0);
  assert.equal(c.content.role, 'model');
  const text = c.content.parts.map((p) => p.text).join('');
  assert.ok(text.startsWith('Simulated answer to "Hello there".'), text);
  const u = j.usageMetadata;
  assert.deepEqual(Object.keys(u), ['promptTokenCount', 'candidatesTokenCount', 'totalTokenCount', 'promptTokensDetails', 'thoughtsTokenCount']);
  assert.equal(u.promptTokenCount, 3); // ⌈11 bytes / 4⌉
  assert.deepEqual(u.promptTokensDetails, [{ modality: 'TEXT', tokenCount: 3 }]);
  assert.equal(u.candidatesTokenCount, Math.ceil(Buffer.byteLength(text) / 4));
  assert.ok(u.thoughtsTokenCount >= 64 && u.thoughtsTokenCount <= 511, `thoughts ${u.thoughtsTokenCount}`);
  assert.equal(u.totalTokenCount, u.promptTokenCount + u.candidatesTokenCount + u.thoughtsTokenCount);
  assert.equal(j.modelVersion, 'gemini-2.5-flash');
  assert.match(j.responseId, /^[A-Za-z0-9_-]{23}$/);

  // Same prompt, same text; a new responseId.
  const again = JSON.parse((await gen(sim, 'gemini-2.5-flash', hello())).text);
  assert.equal(again.candidates[0].content.parts[0].text, text);
  assert.notEqual(again.responseId, j.responseId);

  // thinkingBudget 0 on 2.5-flash: no thoughtsTokenCount at all.
  const nothink = JSON.parse((await gen(sim, 'gemini-2.5-flash', { ...hello(), generationConfig: { thinkingConfig: { thinkingBudget: 0 } } })).text);
  assert.ok(!('thoughtsTokenCount' in nothink.usageMetadata), JSON.stringify(nothink.usageMetadata));
  assert.equal(nothink.usageMetadata.totalTokenCount, nothink.usageMetadata.promptTokenCount + nothink.usageMetadata.candidatesTokenCount);
  assert.equal(nothink.candidates[0].content.parts[0].text, text);

  // A budget of 1 output token is spent on thinking: empty text, MAX_TOKENS, no candidatesTokenCount.
  const tiny = JSON.parse((await gen(sim, 'gemini-2.5-flash', { ...hello(), generationConfig: { maxOutputTokens: 1 } })).text);
  assert.equal(tiny.candidates[0].finishReason, 'MAX_TOKENS');
  assert.deepEqual(tiny.candidates[0].content.parts, [{ text: '' }]);
  assert.ok(!('candidatesTokenCount' in tiny.usageMetadata), JSON.stringify(tiny.usageMetadata));
  assert.equal(tiny.usageMetadata.thoughtsTokenCount, 1);
  assert.equal(tiny.usageMetadata.totalTokenCount, 3 + 1);

  // candidateCount 2 on 2.x repeats the candidate with its index.
  const two = JSON.parse((await gen(sim, 'gemini-2.5-flash', { ...hello(), generationConfig: { candidateCount: 2 } })).text);
  assert.deepEqual(two.candidates.map((x) => x.index), [0, 1]);
});

test('SSE: "data: " + one-line JSON (": " after colons, no space after commas), "\\r\\n\\r\\n" per event, no [DONE]', async () => {
  await sim.reset();
  const res = await api(sim, 'gemini-2.5-flash', 'streamGenerateContent', hello(LONG), { query: '?alt=sse' });
  assert.equal(res.r.status, 200, res.text);
  assert.equal(res.r.headers.get('content-type'), 'text/event-stream');
  assert.equal(res.r.headers.get('x-gemini-service-tier'), 'standard');
  const body = res.text;
  assert.ok(body.endsWith('\r\n\r\n'), JSON.stringify(body.slice(-20)));
  assert.ok(!body.includes('[DONE]'));
  const events = body.slice(0, -4).split('\r\n\r\n');
  assert.ok(events.length >= 3, `only ${events.length} events`);
  const chunks = events.map((e) => {
    assert.ok(e.startsWith('data: {'), e.slice(0, 40));
    const payload = e.slice(6);
    assert.ok(!/[\r\n]/.test(payload), 'an event is one line');
    const j = JSON.parse(payload);
    assert.equal(payload, sseJson(j), 'byte layout of the event JSON');
    return j;
  });
  const ids = new Set(chunks.map((c) => c.responseId));
  assert.equal(ids.size, 1, 'the same responseId on every chunk');
  assert.match([...ids][0], /^[A-Za-z0-9_-]{23}$/);
  for (const c of chunks) assert.equal(c.modelVersion, 'gemini-2.5-flash');
  chunks.forEach((c, i) => {
    const last = i === chunks.length - 1;
    assert.equal('finishReason' in c.candidates[0], last, `finishReason on event ${i}`);
  });
  assert.equal(chunks.at(-1).candidates[0].finishReason, 'STOP');
  let prev = 0;
  for (const c of chunks) {
    assert.ok(c.usageMetadata.candidatesTokenCount >= prev, 'running usage');
    prev = c.usageMetadata.candidatesTokenCount;
  }
  const u = chunks.at(-1).usageMetadata;
  assert.equal(u.totalTokenCount, u.promptTokenCount + u.candidatesTokenCount + u.thoughtsTokenCount);
  // Deltas: together they are the non-streamed answer.
  const whole = JSON.parse((await gen(sim, 'gemini-2.5-flash', hello(LONG))).text);
  assert.equal(chunks.map((c) => c.candidates[0].content.parts.map((p) => p.text).join('')).join(''),
    whole.candidates[0].content.parts[0].text);
  const log = (await logOf(sim))[0];
  assert.equal(log.events, chunks.length);
  assert.equal(log.stream, true);
  assert.equal(log.alt, 'sse');
  assert.equal(log.ended, true);
});

test('JSON-array stream: "[{", elements pretty-printed and separated by "\\n,\\r\\n", ending "\\n]"', async () => {
  const res = await api(sim, 'gemini-2.5-flash', 'streamGenerateContent', hello(LONG));
  assert.equal(res.r.status, 200, res.text);
  assert.equal(res.r.headers.get('content-type'), JSON_CT);
  const body = res.text;
  assert.ok(body.startsWith('[{\n  "candidates": ['), body.slice(0, 30));
  assert.ok(body.endsWith('}\n]'), JSON.stringify(body.slice(-10)));
  const elems = body.slice(1, -2).split('\n,\r\n');
  assert.ok(elems.length >= 3);
  const arr = JSON.parse(body);
  assert.equal(arr.length, elems.length);
  elems.forEach((e, i) => assert.equal(e, pretty(arr[i]), `element ${i}`));
  assert.equal(new Set(arr.map((c) => c.responseId)).size, 1);
  assert.deepEqual(arr.map((c) => c.candidates[0].finishReason ?? null),
    [...Array(arr.length - 1).fill(null), 'STOP']);
  // $alt=json is the same form.
  const alt = await api(sim, 'gemini-2.5-flash', 'streamGenerateContent', hello(LONG), { query: '?alt=json' });
  assert.ok(alt.text.startsWith('[{\n') && alt.text.endsWith('\n]'));
});

test('models.list paging (pageSize, nextPageToken absent on the last page), models.get, v1 subset, alias modelVersion', async () => {
  const all = JSON.parse((await get(sim, '/v1beta/models?pageSize=1000')).text);
  assert.ok(!('nextPageToken' in all));
  const names = all.models.map((m) => m.name);
  assert.ok(names.length > 10 && names.length <= 50, `${names.length} models`);
  assert.ok(names.includes('models/gemini-2.5-flash') && names.includes('models/gemini-embedding-001'));
  // Default page size 50 holds the whole catalog.
  const dflt = await get(sim, '/v1beta/models');
  assert.equal(dflt.r.headers.get('content-type'), JSON_CT);
  assert.deepEqual(Object.keys(JSON.parse(dflt.text)), ['models']);
  // Pages of 5.
  const paged = [];
  let token = null, pages = 0;
  do {
    const q = `/v1beta/models?pageSize=5${token ? `&pageToken=${encodeURIComponent(token)}` : ''}`;
    const page = JSON.parse((await get(sim, q)).text);
    pages++;
    token = page.nextPageToken ?? null;
    if (token) assert.equal(page.models.length, 5);
    else assert.deepEqual(Object.keys(page), ['models'], 'the last page has no nextPageToken');
    paged.push(...page.models.map((m) => m.name));
    assert.ok(pages < 20);
  } while (token);
  assert.deepEqual(paged, names);
  assert.equal(pages, Math.ceil(names.length / 5));
  // The reference entry (§6.1), key order included.
  const flash = await get(sim, '/v1beta/models/gemini-2.5-flash');
  assert.equal(flash.text.replace(/\n$/, ''), pretty({
    name: 'models/gemini-2.5-flash', version: '001', displayName: 'Gemini 2.5 Flash',
    description: 'Stable version of Gemini 2.5 Flash, our mid-size multimodal model that supports up to 1 million tokens, released in June of 2025.',
    inputTokenLimit: 1048576, outputTokenLimit: 65536,
    supportedGenerationMethods: ['generateContent', 'countTokens', 'createCachedContent', 'batchGenerateContent'],
    temperature: 1, topP: 0.95, topK: 64, maxTemperature: 2, thinking: true,
  }));
  const emb = all.models.find((m) => m.name === 'models/gemini-embedding-001');
  assert.equal(emb.outputTokenLimit, 1);
  assert.ok(!('temperature' in emb) && !('topP' in emb) && !('topK' in emb));
  for (const m of all.models) assert.ok(!m.supportedGenerationMethods.includes('streamGenerateContent'));
  // v1 serves stable models and aliases, not previews.
  const v1 = JSON.parse((await get(sim, '/v1/models?pageSize=1000')).text).models.map((m) => m.name);
  assert.ok(v1.includes('models/gemini-2.5-flash'));
  assert.ok(!v1.includes('models/gemini-3-flash-preview') && !v1.includes('models/gemini-3.1-pro-preview'));
  assert.ok(v1.length < names.length);
  // An alias answers with its target's modelVersion (§3.6).
  assert.equal(JSON.parse((await get(sim, '/v1beta/models/gemini-flash-lite-latest')).text).name, 'models/gemini-flash-lite-latest');
  const alias = JSON.parse((await gen(sim, 'gemini-flash-lite-latest', hello())).text);
  assert.equal(alias.modelVersion, 'gemini-3.5-flash-lite');
});

test('countTokens: the contents form and the generateContentRequest form', async () => {
  const a = await api(sim, 'gemini-2.5-flash', 'countTokens', hello());
  assert.equal(a.r.status, 200);
  assert.equal(a.text.replace(/\n$/, ''), pretty({ totalTokens: 3, promptTokensDetails: [{ modality: 'TEXT', tokenCount: 3 }] }));
  const req = { ...hello(), systemInstruction: { parts: [{ text: 'Answer briefly, please.' }] } };
  const b = JSON.parse((await api(sim, 'gemini-2.5-flash', 'countTokens', { generateContentRequest: { model: 'models/gemini-2.5-flash', ...req } })).text);
  assert.equal(b.totalTokens, 3 + Math.ceil('Answer briefly, please.'.length / 4));
  // The same count generateContent reports as promptTokenCount.
  const g = JSON.parse((await gen(sim, 'gemini-2.5-flash', req)).text);
  assert.equal(g.usageMetadata.promptTokenCount, b.totalTokens);
  assertError(await api(sim, 'gemini-2.5-flash', 'countTokens', { generateContentRequest: {} }), gerr(400, 'INVALID_ARGUMENT',
    '* CountTokensRequest.generate_content_request.contents: contents is not specified\n* CountTokensRequest.generate_content_request.model: model is not specified\n'));
  const both = await api(sim, 'gemini-2.5-flash', 'countTokens', { ...hello(), generateContentRequest: { model: 'models/gemini-2.5-flash', ...hello() } });
  assert.equal(both.r.status, 400);
});

test('embedContent and batchEmbedContents; an inner model that does not match the URL is a 400', async () => {
  const m = 'gemini-embedding-001';
  const one = JSON.parse((await api(sim, m, 'embedContent', { content: { parts: [{ text: 'Hello world' }] } })).text);
  assert.deepEqual(Object.keys(one), ['embedding']);
  assert.equal(one.embedding.values.length, 3072);
  assert.ok(one.embedding.values.every((v) => typeof v === 'number' && Number.isFinite(v)));
  const small = JSON.parse((await api(sim, m, 'embedContent', { content: { parts: [{ text: 'Hello world' }] }, outputDimensionality: 768 })).text);
  assert.equal(small.embedding.values.length, 768);
  const again = JSON.parse((await api(sim, m, 'embedContent', { content: { parts: [{ text: 'Hello world' }] }, outputDimensionality: 768 })).text);
  assert.deepEqual(again, small);
  const item = (text) => ({ model: `models/${m}`, content: { parts: [{ text }] }, outputDimensionality: 8 });
  const ab = JSON.parse((await api(sim, m, 'batchEmbedContents', { requests: [item('alpha'), item('beta')] })).text);
  const ba = JSON.parse((await api(sim, m, 'batchEmbedContents', { requests: [item('beta'), item('alpha')] })).text);
  assert.deepEqual(Object.keys(ab), ['embeddings']);
  assert.equal(ab.embeddings.length, 2);
  assert.equal(ab.embeddings[0].values.length, 8);
  assert.notDeepEqual(ab.embeddings[0], ab.embeddings[1]);
  assert.deepEqual(ba.embeddings, [ab.embeddings[1], ab.embeddings[0]], 'same order as the requests');
  const mismatch = await api(sim, m, 'batchEmbedContents', { requests: [{ model: 'models/gemini-embedding-2', content: { parts: [{ text: 'a' }] } }] });
  assert.equal(mismatch.r.status, 400);
  const e = JSON.parse(mismatch.text).error;
  assert.equal(e.status, 'INVALID_ARGUMENT');
  assert.match(e.message, /requests\[0\]\.model/);
  assertError(mismatch, gerr(400, 'INVALID_ARGUMENT', e.message));
});

// ---- 3. the official SDK ----

// The real API's bodies, as the reference gives them (§4.2–§4.5).
const REAL_BODIES = {
  400: KEY_INVALID_BODY,
  403: gerr(403, 'PERMISSION_DENIED', 'The caller does not have permission'),
  404: gerr(404, 'NOT_FOUND', NOT_FOUND_TEXT('gemini-pro', 'v1beta', 'generateContent')),
  429: gerr(429, 'RESOURCE_EXHAUSTED', `${QUOTA_HEAD}* Quota exceeded for metric: ${METRIC_REQ}, limit: 15, model: gemini-3.5-flash-lite\nPlease retry in 38.292227434s.`, [
    HELP,
    {
      '@type': 'type.googleapis.com/google.rpc.QuotaFailure',
      violations: [{ quotaMetric: METRIC_REQ, quotaId: 'GenerateRequestsPerMinutePerProjectPerModel-FreeTier', quotaDimensions: { location: 'global', model: 'gemini-3.5-flash-lite' }, quotaValue: '15' }],
    },
    { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '38s' },
  ]),
  500: gerr(500, 'INTERNAL', MSG_500),
  503: gerr(503, 'UNAVAILABLE', MSG_503),
};

async function sdkError(fn) {
  try { await fn(); } catch (e) { return e; }
  assert.fail('the SDK did not throw');
}

test('@google/genai throws the same ApiError against the sim as against the real API\'s bodies (400/403/404/429/500/503)', async () => {
  await sim.reset();
  const sdk = (apiKey) => new GoogleGenAI({ apiKey, httpOptions: { baseUrl: sim.url } });
  const cases = [
    [400, 'NotAGoogleKey123', 'gemini-2.5-flash'],
    [403, 'AIzaNoPerm', 'gemini-2.5-flash'],
    [404, KEY, 'gemini-pro'],
    [429, KEY, 'gemma-4-31b-it'],
    [500, KEY, 'gemini-3.6-flash'],
    [503, KEY, 'gemini-2.5-pro'],
  ];
  for (const [code, key, model] of cases) {
    const fromSim = await sdkError(() => sdk(key).models.generateContent({ model, contents: 'Hello there' }));
    assert.ok(fromSim instanceof ApiError, `${code}: ${fromSim}`);
    assert.equal(fromSim.status, code);
    const simBody = JSON.parse(fromSim.message);
    // Exactly the real API's body, as the reference gives it (429: same shape, live numbers).
    await sim.script({ match: { key: 'AIzaRealBody' }, reply: { status: code, body: REAL_BODIES[code] } });
    const fromReal = await sdkError(() => sdk('AIzaRealBody').models.generateContent({ model, contents: 'Hello there' }));
    assert.ok(fromReal instanceof ApiError);
    assert.equal(fromReal.constructor, fromSim.constructor);
    assert.equal(fromReal.status, fromSim.status);
    assert.deepEqual(JSON.parse(fromReal.message), REAL_BODIES[code]);
    if (code === 429) {
      assert.deepEqual(Object.keys(simBody.error), Object.keys(REAL_BODIES[429].error));
      assert.deepEqual(simBody.error.details.map((d) => d['@type']), REAL_BODIES[429].error.details.map((d) => d['@type']));
      assert.deepEqual(Object.keys(simBody.error.details[1].violations[0]), Object.keys(REAL_BODIES[429].error.details[1].violations[0]));
    } else {
      assert.deepEqual(simBody, REAL_BODIES[code], `${code}: the sim's body is the real one`);
    }
  }
  // Streams: an error before the stream is the same ApiError.
  const pre = await sdkError(async () => {
    for await (const _ of await sdk(KEY).models.generateContentStream({ model: 'gemini-2.5-pro', contents: 'hi' })) { /* none */ }
  });
  assert.ok(pre instanceof ApiError);
  assert.equal(pre.status, 503);
  assert.deepEqual(JSON.parse(pre.message), REAL_BODIES[503]);
  // And the SDK reads a normal answer, stream and all.
  const ok = await sdk(KEY).models.generateContent({ model: 'gemini-2.5-flash', contents: 'Hello there' });
  assert.ok(ok.text.startsWith('Simulated answer to "Hello there".'));
});

test('@google/genai: a raw {"error":...} object after some SSE events makes generateContentStream throw an ApiError', async () => {
  await sim.reset();
  const ev = (text) => ({ candidates: [{ content: { parts: [{ text }], role: 'model' }, index: 0 }], modelVersion: 'gemini-2.5-flash' });
  await sim.script({
    match: { method: 'streamGenerateContent' },
    reply: { stream: [ev('Hi'), ev(' there')], chunkMs: 50, error: { code: 503, message: MSG_503, status: 'UNAVAILABLE' } },
    times: 3,
  });
  // The raw bytes first: two events, then the bare pretty error object (not a data: line).
  const raw = await api(sim, 'gemini-2.5-flash', 'streamGenerateContent', hello(), { query: '?alt=sse' });
  assert.equal(raw.r.status, 200);
  assert.equal(raw.text, `data: ${sseJson(ev('Hi'))}\r\n\r\ndata: ${sseJson(ev(' there'))}\r\n\r\n${pretty(REAL_BODIES[503])}\n`);
  // On the array form the error is one more element.
  const arr = await api(sim, 'gemini-2.5-flash', 'streamGenerateContent', hello());
  assert.equal(arr.r.status, 200);
  assert.equal(arr.text, `[${pretty(ev('Hi'))}\n,\r\n${pretty(ev(' there'))}\n,\r\n${pretty(REAL_BODIES[503])}\n]`);

  const ai = new GoogleGenAI({ apiKey: KEY, httpOptions: { baseUrl: sim.url } });
  const got = [];
  const e = await sdkError(async () => {
    for await (const c of await ai.models.generateContentStream({ model: 'gemini-2.5-flash', contents: 'hi' })) got.push(c.text);
  });
  assert.deepEqual(got, ['Hi', ' there']);
  assert.ok(e instanceof ApiError, `expected an ApiError, got ${e?.constructor?.name}: ${e?.message}`);
  assert.equal(e.status, 503);
  assert.ok(e.message.includes(JSON.stringify(REAL_BODIES[503])), e.message);
});

// ---- 4. reproducibility ----

async function runSequence(s) {
  const out = [];
  for (let i = 0; i < 40; i++) {
    const model = i % 3 === 0 ? 'gemini-2.5-flash-lite' : 'gemini-2.5-flash';
    if (i % 4 === 3) {
      const res = await api(s, model, 'streamGenerateContent', hello(`Question number ${i % 7}`), { query: '?alt=sse' });
      if (res.r.status !== 200) { out.push({ status: res.r.status, body: res.text }); continue; }
      const chunks = res.text.split('\r\n\r\n').filter(Boolean).map((e) => JSON.parse(e.slice(6)));
      out.push({ status: 200, text: chunks.map((c) => c.candidates[0].content.parts[0].text).join(''), id: chunks[0].responseId, n: chunks.length });
    } else {
      const res = await gen(s, model, hello(`Question number ${i % 7}`));
      if (res.r.status !== 200) { out.push({ status: res.r.status, body: res.text }); continue; }
      const j = JSON.parse(res.text);
      out.push({ status: 200, text: j.candidates[0].content.parts[0].text, id: j.responseId, usage: j.usageMetadata });
    }
  }
  return out;
}

test('reproducibility: the same --seed and --faults give the same statuses and answers; another seed does not', async () => {
  const faults = ['--faults', '503=0.3,500=0.1', ...UNLIMITED];
  const [a, b, c] = await Promise.all([
    startSim(['--seed', '42', ...faults]), startSim(['--seed', '42', ...faults]), startSim(['--seed', '4242', ...faults]),
  ]);
  try {
    const ra = await runSequence(a);
    const rb = await runSequence(b);
    const rc = await runSequence(c);
    const statuses = (r) => r.map((x) => x.status);
    const sa = statuses(ra);
    assert.ok(sa.includes(503) && sa.includes(500) && sa.includes(200), sa.join(','));
    assert.ok(sa.filter((x) => x === 200).length >= 12, sa.join(','));
    assert.deepEqual(rb, ra, 'same seed, same replies and faults');
    assert.notDeepEqual(statuses(rc), sa, 'another seed, another fault sequence');
    // /_sim/reset re-seeds: the sequence replays.
    await a.reset();
    assert.deepEqual(await runSequence(a), ra);
  } finally {
    await Promise.all([a.stop(), b.stop(), c.stop()]);
  }
});

// ---- 5. scripted mode ----

test('scripts match by model, key and method; times; first match in queue order wins', async () => {
  await sim.reset();
  const body = (tag) => ({ body: { tag } });
  await sim.script([
    { match: { model: 'gemini-2.5-flash-lite', method: 'generateContent' }, reply: body('lite-gen'), times: 2 },
    { match: { key: 'AIzaKeyB' }, reply: body('key-b') },
    { match: { method: 'countTokens' }, reply: body('count') },
    { match: { method: 'countTokens' }, reply: body('count-2') },
    { match: { model: 'models/gemini-3.5-flash-lite' }, reply: body('alias-target') },
  ]);
  const pending = await (await fetch(`${sim.url}/_sim/script`)).json();
  assert.deepEqual(pending, { pending: 5 });
  const tag = async (res) => { assert.equal(res.r.status, 200, res.text); return JSON.parse(res.text).tag ?? 'generated'; };
  const seen = [];
  seen.push(await tag(await gen(sim, 'gemini-2.5-flash', hello()))); // no match
  seen.push(await tag(await gen(sim, 'gemini-2.5-flash-lite', hello()))); // lite-gen 1/2
  seen.push(await tag(await api(sim, 'gemini-2.5-flash-lite', 'countTokens', hello()))); // method first: count
  seen.push(await tag(await gen(sim, 'gemini-2.5-flash-lite', hello()))); // lite-gen 2/2
  seen.push(await tag(await gen(sim, 'gemini-2.5-flash-lite', hello()))); // used up: generated
  seen.push(await tag(await gen(sim, 'gemini-2.5-flash', hello(), { key: 'AIzaKeyB' }))); // key-b
  seen.push(await tag(await gen(sim, 'gemini-2.5-flash', hello(), { key: 'AIzaKeyB' }))); // used up
  seen.push(await tag(await api(sim, 'gemini-2.5-flash', 'countTokens', hello()))); // count-2
  seen.push(await tag(await gen(sim, 'gemini-flash-lite-latest', hello()))); // the alias's target matches
  assert.deepEqual(seen, ['generated', 'lite-gen', 'count', 'lite-gen', 'generated', 'key-b', 'generated', 'count-2', 'alias-target']);
  assert.deepEqual(await (await fetch(`${sim.url}/_sim/script`)).json(), { pending: 0 });
  const log = await logOf(sim);
  assert.deepEqual(log.map((e) => e.scripted), [false, true, true, true, false, true, false, true, true]);
  assert.deepEqual(log.map((e) => e.seq), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  // times 0: until reset. A script is looked up before authentication.
  await sim.script({ match: { method: 'models.get' }, reply: { status: 503 }, times: 0 });
  for (let i = 0; i < 3; i++) assert.equal((await get(sim, '/v1beta/models/gemini-2.5-flash', { key: null })).r.status, 503);
  await sim.reset();
  assert.equal((await get(sim, '/v1beta/models/gemini-2.5-flash')).r.status, 200);
});

test('a hung request that the client aborts shows aborted: true in /_sim/log within a second', async () => {
  await sim.reset();
  await sim.script({ match: { key: 'AIzaHang' }, reply: { hang: true } });
  const ac = new AbortController();
  const p = fetch(`${sim.url}/v1beta/models/gemini-2.5-flash:generateContent`, {
    method: 'POST', headers: { 'x-goog-api-key': 'AIzaHang' }, body: JSON.stringify(hello()), signal: ac.signal,
  }).then(() => 'answered', (e) => e.name);
  await sleep(200);
  const during = (await logOf(sim)).find((e) => e.key === 'AIzaHang');
  assert.equal(during?.aborted, false);
  assert.equal(during.ended, false);
  ac.abort();
  assert.equal(await p, 'AbortError');
  const t0 = Date.now();
  let e;
  while (Date.now() - t0 < 1000) {
    e = (await logOf(sim)).find((x) => x.key === 'AIzaHang');
    if (e?.aborted) break;
    await sleep(25);
  }
  assert.equal(e?.aborted, true, `not aborted within a second: ${JSON.stringify(e)}`);
  assert.equal(e.status, 0);
  assert.equal(e.ended, false);
  assert.equal(e.scripted, true);
  assert.ok(e.duration_ms >= 150 && e.duration_ms < 1500, `duration ${e.duration_ms}`);
});

test('a stream reset after N events ends without a clean end', async () => {
  await sim.reset();
  await sim.script({ match: { key: 'AIzaReset' }, reply: { resetAfter: 2, chunkMs: 10 } });
  const r = await fetch(`${sim.url}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse`, {
    method: 'POST', headers: { 'x-goog-api-key': 'AIzaReset' }, body: JSON.stringify(hello(LONG)),
  });
  assert.equal(r.status, 200);
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let text = '', failed = null;
  try {
    for (;;) { const { done, value } = await reader.read(); if (done) break; text += dec.decode(value, { stream: true }); }
  } catch (err) { failed = err; }
  assert.ok(failed, 'the body must fail, not end cleanly');
  const events = text.split('\r\n\r\n').filter(Boolean);
  assert.equal(events.length, 2);
  assert.ok(!text.includes('finishReason'));
  const e = (await logOf(sim)).find((x) => x.key === 'AIzaReset');
  assert.equal(e.status, 200);
  assert.equal(e.events, 2);
  assert.equal(e.reset, true);
  assert.equal(e.ended, false);
  // The generated answer would have had more events.
  const full = await api(sim, 'gemini-2.5-flash', 'streamGenerateContent', hello(LONG), { query: '?alt=sse' });
  assert.ok(full.text.split('\r\n\r\n').filter(Boolean).length > 2);
});

test('/_sim/ endpoints work from loopback and are not logged; a bad script entry queues nothing', async () => {
  const reset = await fetch(`${sim.url}/_sim/reset`, { method: 'POST' });
  assert.equal(reset.status, 200);
  assert.deepEqual(await reset.json(), { reset: true, seed: 7 });
  const bad = await fetch(`${sim.url}/_sim/script`, { method: 'POST', body: JSON.stringify([{ reply: {} }, { reply: { statuz: 1 } }]) });
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).error.message, /script 1: unknown field reply\.statuz/);
  assert.deepEqual(await (await fetch(`${sim.url}/_sim/script`)).json(), { pending: 0 });
  const ok = await fetch(`${sim.url}/_sim/script`, { method: 'POST', body: JSON.stringify({ scripts: [{ reply: {} }, { reply: { status: 500 } }] }) });
  assert.deepEqual(await ok.json(), { queued: 2, pending: 2 });
  const log = await (await fetch(`${sim.url}/_sim/log`)).json();
  assert.deepEqual(log, { requests: [], dropped: 0 });
  await sim.reset();
  assert.deepEqual(await (await fetch(`${sim.url}/_sim/script`)).json(), { pending: 0 });
  // Anything else is the API's 404.
  assertError(await get(sim, '/v1beta/nothing'), gerr(404, 'NOT_FOUND', 'Method not found.'));
});

// A peer that is not loopback: this host's own non-loopback address, when it has one.
const lanAddress = Object.values(networkInterfaces()).flat()
  .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;

test('/_sim/ endpoints answer 404 to a peer that is not loopback, and do nothing', { skip: !lanAddress && 'no non-loopback address here' }, async () => {
  // The sim listens on the non-loopback address only, so every peer is non-loopback.
  const s = await startSim(['--seed', '3', '--listen', `${lanAddress}:0`, ...UNLIMITED]);
  try {
    assert.ok(s.url.includes(lanAddress), s.url);
    const notFound = pretty(gerr(404, 'NOT_FOUND', 'Method not found.')) + '\n';
    const tiers = [];
    const check = async (r, what) => {
      assert.equal(r.status, 404, what);
      assert.equal(r.headers.get('content-type'), JSON_CT);
      assert.equal(await r.text(), notFound, what);
      tiers.push(`${what}: ${r.headers.get('x-gemini-service-tier')}`);
    };
    await check(await fetch(`${s.url}/_sim/script`, { method: 'POST', body: JSON.stringify({ reply: { status: 503 } }) }), 'POST /_sim/script');
    for (const [method, path] of [['GET', '/_sim/log'], ['GET', '/_sim/script'], ['POST', '/_sim/reset']]) {
      await check(await fetch(`${s.url}${path}`, { method }), `${method} ${path}`);
    }
    // Nothing was queued: the API answers normally.
    const ok = await gen(s, 'gemini-2.5-flash', hello());
    assert.equal(ok.r.status, 200, ok.text);
    // Indistinguishable from any unknown path, which carries the header like every response.
    await check(await fetch(`${s.url}/v1beta/nothing`), 'GET /v1beta/nothing');
    assert.deepEqual(tiers, tiers.map((t) => t.replace(/: .*$/, ': standard')));
  } finally {
    await s.stop();
  }
});

// ---- 7. latency ----

test('--latency-ms 200 delays the first byte ≥ 200 ms; --chunk-ms 100 spaces SSE events ≥ ~90 ms', async () => {
  const s = await startSim(['--seed', '1', '--latency-ms', '200', '--chunk-ms', '100', ...UNLIMITED]);
  try {
    let t0 = performance.now();
    const res = await gen(s, 'gemini-2.5-flash', hello());
    const ttfb = performance.now() - t0;
    assert.equal(res.r.status, 200);
    assert.ok(ttfb >= 199 && ttfb < 1500, `time to first byte ${ttfb.toFixed(1)} ms`);
    // Errors are delayed too.
    t0 = performance.now();
    const err = await gen(s, 'gemini-pro', hello());
    assert.equal(err.r.status, 404);
    assert.ok(performance.now() - t0 >= 199);

    t0 = performance.now();
    const r = await fetch(`${s.url}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse`, {
      method: 'POST', headers: { 'x-goog-api-key': KEY }, body: JSON.stringify(hello(LONG)),
    });
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    const times = [];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf('\r\n\r\n')) >= 0) { times.push(performance.now() - t0); buf = buf.slice(i + 4); }
    }
    assert.ok(times.length >= 3, `${times.length} events`);
    assert.ok(times[0] >= 199, `first event at ${times[0].toFixed(1)} ms`);
    // Each event is sent ≥ 100 ms after the one before, so event i cannot arrive before
    // 200 + 100·i ms (10 ms of slack per event). Measured from t0, not between arrivals: a
    // test process descheduled when one event comes in sees the next gap short, though the
    // sim kept its pace.
    for (let i = 1; i < times.length; i++) {
      assert.ok(times[i] >= 199 + 90 * i, `event ${i} at ${times[i].toFixed(1)} ms`);
      const gap = times[i] - times[i - 1];
      assert.ok(gap < 1000, `gap ${gap.toFixed(1)} ms`);
    }
  } finally {
    await s.stop();
  }
});

// Reads an SSE response's events with the time each arrived.
async function timedEvents(r, t0) {
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  const events = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf('\r\n\r\n')) >= 0) {
      events.push({ t: performance.now() - t0, json: JSON.parse(buf.slice(6, i)) });
      buf = buf.slice(i + 4);
    }
  }
  return events;
}

test('--think-ms / thinkMs: a shown thought is an event of its own, the text follows after the thinking time; unshown, the first byte waits', async () => {
  // Times are measured from the request: a loaded machine can only make events later.
  const s = await startSim(['--seed', '1', '--think-ms', '800', ...UNLIMITED]);
  try {
    const thinking = { ...hello(LONG), generationConfig: { thinkingConfig: { includeThoughts: true } } };
    const stream = (body) => fetch(`${s.url}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse`, {
      method: 'POST', headers: { 'x-goog-api-key': KEY }, body: JSON.stringify(body),
    });
    let t0 = performance.now();
    let ev = await timedEvents(await stream(thinking), t0);
    const parts0 = ev[0].json.candidates[0].content.parts;
    assert.deepEqual(parts0.map((p) => p.thought === true), [true], 'the first event is the thought alone');
    assert.equal(ev[0].json.candidates[0].finishReason, undefined);
    assert.ok(ev[1].t >= 790 && ev[1].t < 3000, `the text came at ${ev[1].t.toFixed(1)} ms`);
    assert.ok(ev[0].t < ev[1].t - 200, `the thought came at ${ev[0].t.toFixed(1)} ms, the text at ${ev[1].t.toFixed(1)} ms`);
    assert.ok(ev[1].json.candidates[0].content.parts.every((p) => !p.thought && typeof p.text === 'string'));
    assert.equal(ev.at(-1).json.candidates[0].finishReason, 'STOP');

    // Not shown: nothing at all for the thinking time.
    t0 = performance.now();
    ev = await timedEvents(await stream(hello(LONG)), t0);
    assert.ok(ev[0].t >= 790, `first event at ${ev[0].t.toFixed(1)} ms`);
    assert.ok(ev[0].json.candidates[0].content.parts.every((p) => !p.thought));

    // A model told not to think does not wait; a script's thinkMs beats the flag.
    t0 = performance.now();
    await timedEvents(await stream({ ...hello(LONG), generationConfig: { thinkingConfig: { thinkingBudget: 0 } } }), t0);
    assert.ok(performance.now() - t0 < 700, 'a thinking budget of 0 still waited');
    await s.script({ reply: { thinkMs: 0 } });
    t0 = performance.now();
    ev = await timedEvents(await stream(thinking), t0);
    assert.ok(ev.at(-1).t < 700, `scripted thinkMs 0 took ${ev.at(-1).t.toFixed(1)} ms`);
    // The whole answer waits too.
    t0 = performance.now();
    const whole = await gen(s, 'gemini-2.5-flash', hello());
    assert.equal(whole.r.status, 200);
    assert.ok(performance.now() - t0 >= 790);
  } finally {
    await s.stop();
  }
});
