// The Anthropic door (issue 15): the official @anthropic-ai/sdk pointed at skiff, skiff
// translating Messages to Gemini against `skiff sim`. The sim answers tools and thoughts as
// Gemini does, and a Gemini 3 model refuses a replayed call without the signature it gave,
// so a lost signature shows up here as the 400 a client would get.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { startSim, startServe, waitFor } from './lib.mjs';

const KEY = 'AIzaSyTESTkeyAnthropic000000000000000001';
const TOKEN = 'sk-skiff-anthropic-test-token-0001';
let sim, serve, client;

// The model map of the README: a glob per Claude family, and exact names for the list.
const MODELS = `
models:
  claude-sonnet-4-5: gemini-3-flash-preview
  claude-opus-4-1: gemini-2.5-pro
  "claude-sonnet-*": gemini-3-flash-preview
  "claude-opus-*": gemini-2.5-pro
  "claude-haiku-*": gemini-2.5-flash
`;

function config(extra = '') {
  return `
upstreams: {gemini: {base_url: ${sim.url}, keys: [${KEY}]}}
tokens: [{name: claude-test, token: ${TOKEN}}]
retry: {max_attempts: 4, base_delay_ms: 10, max_delay_ms: 40, deadline_ms: 8000, max_wait_ms: 500}
fallbacks: {gemini-2.5-pro: [gemini-2.5-flash]}
storage: {sqlite: ""}
workers: 1
${MODELS}${extra}`;
}

before(async () => {
  sim = await startSim(['--rpm', 'unlimited', '--tpm', 'unlimited', '--rpd', 'unlimited']);
  serve = await startServe(config());
  client = new Anthropic({ apiKey: TOKEN, baseURL: serve.url, maxRetries: 0 });
});

after(async () => {
  await serve?.stop();
  await sim?.stop();
  if (serve) assert.ok(!serve.stderr.includes(KEY), 'the upstream key appeared in the logs');
});

beforeEach(async () => { await sim.reset(); });

const weather = {
  name: 'get_weather',
  description: 'The weather in a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};
const time = {
  name: 'get_time',
  description: 'The time in a zone',
  input_schema: { type: 'object', properties: { zone: { type: 'string', enum: ['UTC', 'CET'] } } },
};
const ID = /^[a-zA-Z0-9_-]+$/;

// A raw Messages call (for what the SDK hides: exact events, headers, bodies).
function post(path, body, headers = {}) {
  return fetch(`${serve.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': TOKEN, 'anthropic-version': '2023-06-01', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

// Splits an SSE body into {event, data} in order.
function sse(text) {
  return text.split('\n\n').filter((b) => b.trim()).map((b) => {
    const ev = /^event: (.*)$/m.exec(b)?.[1];
    const data = /^data: (.*)$/m.exec(b)?.[1];
    return { event: ev, data: data ? JSON.parse(data) : undefined };
  });
}

// Whether a list of event names follows the documented grammar:
// message_start (ping)* (block)* message_delta message_stop, where a block is
// content_block_start (content_block_delta | ping)* content_block_stop.
function grammar(names) {
  const s = names.filter((n) => n !== 'ping').join(' ');
  return /^message_start( content_block_start( content_block_delta)* content_block_stop)* message_delta message_stop$/.test(s);
}

test('a message: text, the model name asked for, stop_reason end_turn, usage; the SDK through ANTHROPIC_BASE_URL', async () => {
  process.env.ANTHROPIC_BASE_URL = serve.url;
  let viaEnv;
  try {
    viaEnv = new Anthropic({ apiKey: TOKEN, maxRetries: 0 });
  } finally {
    delete process.env.ANTHROPIC_BASE_URL;
  }
  const { data: m, response } = await viaEnv.messages.create({
    model: 'claude-haiku-4-5',
    max_tokens: 1024,
    system: [{ type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } }],
    messages: [{ role: 'user', content: 'Say hello to the harbour' }],
    metadata: { user_id: 'u-1' },
  }).withResponse();
  assert.equal(m.type, 'message');
  assert.equal(m.role, 'assistant');
  assert.equal(m.model, 'claude-haiku-4-5');
  assert.match(m.id, /^msg_[a-zA-Z0-9_-]+$/);
  assert.equal(m.content.length, 1);
  assert.equal(m.content[0].type, 'text');
  assert.match(m.content[0].text, /^Simulated answer to "Say hello to the harbour/);
  assert.equal(m.stop_reason, 'end_turn');
  assert.equal(m.stop_sequence, null);
  assert.ok(m.usage.input_tokens > 0 && m.usage.output_tokens > 0);
  assert.equal(response.headers.get('x-skiff-model'), 'gemini-2.5-flash');
  const log = await sim.log();
  assert.equal(log.length, 1);
  assert.equal(log[0].model, 'gemini-2.5-flash');
  assert.equal(log[0].method, 'generateContent');
  assert.equal(log[0].key, KEY);
});

test('a stream: the documented event sequence, text deltas that add up to the message', async () => {
  const stream = client.messages.stream({
    model: 'claude-haiku-4-5',
    max_tokens: 512,
    messages: [{ role: 'user', content: 'Tell me a long story about boats, harbours, sailors and the sea at night' }],
  });
  const names = [];
  let text = '';
  for await (const ev of stream) {
    names.push(ev.type);
    if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') text += ev.delta.text;
  }
  const m = await stream.finalMessage();
  assert.ok(grammar(names), names.join(' '));
  assert.ok(names.filter((n) => n === 'content_block_delta').length >= 2, 'the text came in one piece');
  assert.equal(m.content[0].text, text);
  assert.equal(m.model, 'claude-haiku-4-5');
  assert.equal(m.stop_reason, 'end_turn');
  assert.ok(m.usage.output_tokens > 0);
  assert.equal((await sim.log())[0].method, 'streamGenerateContent');
});

test('the raw stream: event lines, message_start with usage, message_delta with stop_reason, nothing after message_stop', async () => {
  const r = await post('/v1/messages', { model: 'claude-haiku-4-5', max_tokens: 1024, stream: true, messages: [{ role: 'user', content: 'hi there' }] });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/event-stream/);
  const evs = sse(await r.text());
  assert.ok(grammar(evs.map((e) => e.event)), evs.map((e) => e.event).join(' '));
  for (const e of evs) assert.equal(e.data.type, e.event);
  const start = evs[0].data.message;
  assert.equal(start.model, 'claude-haiku-4-5');
  assert.deepEqual(start.content, []);
  assert.equal(start.stop_reason, null);
  assert.ok(start.usage.input_tokens > 0);
  const delta = evs.at(-2).data;
  assert.equal(delta.delta.stop_reason, 'end_turn');
  assert.ok(delta.usage.output_tokens > 0);
});

test('the same door under /anthropic/v1, with Bearer auth, anthropic-beta and ?beta=true', async () => {
  const c = new Anthropic({ authToken: TOKEN, baseURL: `${serve.url}/anthropic`, maxRetries: 0 });
  const m = await c.beta.messages.create({
    model: 'claude-haiku-4-5', max_tokens: 1024, betas: ['interleaved-thinking-2025-05-14'],
    messages: [{ role: 'user', content: 'hello' }],
  });
  assert.equal(m.type, 'message');
  assert.match(m.content[0].text, /^Simulated answer to "hello/);
  const r = await fetch(`${serve.url}/anthropic/v1/messages?beta=true`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', 'anthropic-beta': 'prompt-caching-2024-07-31' },
    body: JSON.stringify({ model: 'claude-haiku-4-5', max_tokens: 1024, messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal(r.status, 200);
  assert.equal((await r.json()).type, 'message');
});

test('a tool loop of three turns: parallel tool_use, tool_results with is_error, the signatures restored from skiff\'s cache', async () => {
  const model = 'claude-sonnet-4-5'; // a Gemini 3 model: the sim checks signatures
  const tools = [weather, time];
  const user1 = { role: 'user', content: 'Call get_weather for Paris and get_time' };
  const t1 = await client.messages.create({ model, max_tokens: 1024, tools, messages: [user1] });
  assert.equal(t1.stop_reason, 'tool_use');
  const uses = t1.content.filter((b) => b.type === 'tool_use');
  assert.deepEqual(uses.map((u) => u.name), ['get_weather', 'get_time']);
  assert.equal(typeof uses[0].input.city, 'string');
  assert.equal(uses[1].input.zone, 'UTC');
  for (const u of uses) {
    assert.match(u.id, ID);
    assert.ok(u.id.length <= 64, `tool_use id of ${u.id.length} characters`);
  }
  assert.notEqual(uses[0].id, uses[1].id);

  // Turn 2: both results, one of them an error. The model turn given back must carry the
  // signature Gemini gave: only skiff's cache, keyed by the tool_use id, can supply it here.
  const results = {
    role: 'user',
    content: [
      { type: 'tool_result', tool_use_id: uses[0].id, content: '21 C and sunny' },
      { type: 'tool_result', tool_use_id: uses[1].id, content: [{ type: 'text', text: 'the clock is broken' }], is_error: true },
    ],
  };
  const a1 = { role: 'assistant', content: t1.content };
  const t2 = await client.messages.create({ model, max_tokens: 1024, tools, messages: [user1, a1, results] });
  assert.equal(t2.stop_reason, 'end_turn');
  const text2 = t2.content.find((b) => b.type === 'text').text;
  assert.match(text2, /get_weather/);
  assert.match(text2, /21 C and sunny/);
  assert.match(text2, /"error":"the clock is broken"/);

  // Turn 3: a new question, a new call.
  const t3 = await client.messages.create({
    model, max_tokens: 1024, tools,
    messages: [user1, a1, results, { role: 'assistant', content: t2.content }, { role: 'user', content: 'Now run get_time once more' }],
  });
  assert.equal(t3.stop_reason, 'tool_use');
  assert.deepEqual(t3.content.filter((b) => b.type === 'tool_use').map((u) => u.name), ['get_time']);
  const log = await sim.log();
  assert.deepEqual(log.map((e) => e.status), [200, 200, 200]);

  // The same turn 2 with ids skiff never made (a client that renames them) and no thinking
  // block: Gemini 3's 400, in Anthropic's shape, and the key is not blamed.
  const renamed = { role: 'assistant', content: t1.content.map((b, i) => (b.type === 'tool_use' ? { ...b, id: `toolu_client_${i}` } : b)) };
  const renamedResults = { role: 'user', content: results.content.map((b, i) => ({ ...b, tool_use_id: `toolu_client_${i}` })) };
  await assert.rejects(
    client.messages.create({ model, max_tokens: 1024, tools, messages: [user1, renamed, renamedResults] }),
    (e) => e instanceof Anthropic.BadRequestError && e.type === 'invalid_request_error' && /thought_signature/.test(e.message),
  );
  const health = await (await fetch(`${serve.url}/healthz`)).json();
  assert.equal(health.usable_keys, 1);
});

test('disable_parallel_tool_use keeps one call; tool_choice tool calls the named tool; a streamed tool_use arrives with its whole input', async () => {
  const tools = [weather, time];
  const one = await client.messages.create({
    model: 'claude-haiku-4-5', max_tokens: 512, tools, tool_choice: { type: 'auto', disable_parallel_tool_use: true },
    messages: [{ role: 'user', content: 'Call get_weather for Rome and get_time' }],
  });
  assert.deepEqual(one.content.filter((b) => b.type === 'tool_use').map((u) => u.name), ['get_weather']);
  const forced = await client.messages.create({
    model: 'claude-haiku-4-5', max_tokens: 512, tools, tool_choice: { type: 'tool', name: 'get_time' },
    messages: [{ role: 'user', content: 'hello' }],
  });
  assert.deepEqual(forced.content.filter((b) => b.type === 'tool_use').map((u) => u.name), ['get_time']);

  const stream = client.messages.stream({
    model: 'claude-haiku-4-5', max_tokens: 512, tools,
    messages: [{ role: 'user', content: 'Call get_weather for Oslo' }],
  });
  const deltas = [];
  for await (const ev of stream) if (ev.type === 'content_block_delta' && ev.delta.type === 'input_json_delta') deltas.push(ev.delta.partial_json);
  const m = await stream.finalMessage();
  assert.equal(m.stop_reason, 'tool_use');
  assert.equal(deltas.length, 1);
  assert.notEqual(deltas[0], '');
  const use = m.content.find((b) => b.type === 'tool_use');
  assert.equal(typeof use.input.city, 'string');
  assert.deepEqual(JSON.parse(deltas[0]), use.input);
});

test('thinking: signed thinking blocks, given back on the next turn, reach Gemini as the signature it gave', async () => {
  const model = 'claude-sonnet-4-5';
  const tools = [weather];
  const thinking = { type: 'enabled', budget_tokens: 2048 };
  const user1 = { role: 'user', content: 'Call get_weather for Lima' };
  const t1 = await client.messages.create({ model, max_tokens: 4096, thinking, tools, messages: [user1] });
  assert.equal(t1.content[0].type, 'thinking');
  assert.ok(t1.content[0].thinking.length > 0);
  const sig = t1.content[0].signature;
  assert.ok(sig && sig.length > 0, 'the thinking block is not signed');
  const use = t1.content.find((b) => b.type === 'tool_use');
  assert.ok(!use.id.includes(sig), 'the signature travels in the tool_use id');
  assert.ok(t1.usage.output_tokens > 0);

  // Given back with ids skiff does not know: only the thinking block carries the signature.
  const renamedUse = { ...use, id: 'toolu_elsewhere_1' };
  const back = { role: 'assistant', content: [t1.content[0], renamedUse] };
  const result = { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_elsewhere_1', content: '18 C' }] };
  const t2 = await client.messages.create({ model, max_tokens: 4096, thinking, tools, messages: [user1, back, result] });
  assert.match(t2.content.find((b) => b.type === 'text').text, /18 C/);

  // Without the signature: Gemini 3 refuses, as the client would see from Google.
  const unsigned = { role: 'assistant', content: [{ type: 'thinking', thinking: t1.content[0].thinking, signature: '' }, renamedUse] };
  await assert.rejects(
    client.messages.create({ model, max_tokens: 4096, thinking, tools, messages: [user1, unsigned, result] }),
    (e) => e instanceof Anthropic.BadRequestError && /signature/.test(e.message),
  );

  // Streamed: thinking_delta, then signature_delta before the block closes.
  const stream = client.messages.stream({ model, max_tokens: 4096, thinking, tools, messages: [user1] });
  const kinds = [];
  for await (const ev of stream) if (ev.type === 'content_block_delta') kinds.push(ev.delta.type);
  assert.equal(kinds[0], 'thinking_delta');
  assert.ok(kinds.includes('signature_delta'));
  const m = await stream.finalMessage();
  assert.equal(m.content[0].signature, sig);
});

test('a long thought: a ping every 5 s while nothing is sent, then the answer', { timeout: 60000 }, async () => {
  await sim.script({ match: { method: 'streamGenerateContent' }, reply: { thinkMs: 11000 } });
  const r = await post('/v1/messages', {
    model: 'claude-haiku-4-5', max_tokens: 4096, stream: true, thinking: { type: 'enabled', budget_tokens: 1024 },
    messages: [{ role: 'user', content: 'Think hard about harbours' }],
  });
  assert.equal(r.status, 200);
  const evs = sse(await r.text());
  const names = evs.map((e) => e.event);
  assert.ok(grammar(names), names.join(' '));
  const pings = names.filter((n) => n === 'ping').length;
  assert.ok(pings >= 2, `${pings} pings in an 11 s thought at one per 5 s: ${names.join(' ')}`);
  for (const e of evs.filter((x) => x.event === 'ping')) assert.deepEqual(e.data, { type: 'ping' });
  // The pings come while the thought is open and before the text.
  const firstText = evs.findIndex((e) => e.event === 'content_block_delta' && e.data.delta.type === 'text_delta');
  assert.ok(names.indexOf('ping') < firstText);
});

test('count_tokens counts through countTokens; the models list and one model in Anthropic\'s shape', async () => {
  const n = await client.messages.countTokens({
    model: 'claude-opus-4-1',
    system: 'You are a sailor.',
    tools: [weather],
    messages: [{ role: 'user', content: 'How long is a nautical mile?' }],
  });
  assert.ok(Number.isInteger(n.input_tokens) && n.input_tokens > 0);
  const log = await sim.log();
  assert.equal(log.length, 1);
  assert.equal(log[0].method, 'countTokens');
  assert.equal(log[0].model, 'gemini-2.5-pro');

  const ids = [];
  for await (const model of client.models.list()) {
    assert.equal(model.type, 'model');
    assert.ok(model.display_name.length > 0);
    assert.ok(!Number.isNaN(Date.parse(model.created_at)));
    ids.push(model.id);
  }
  assert.deepEqual(ids.sort(), ['claude-opus-4-1', 'claude-sonnet-4-5']);
  const one = await client.models.retrieve('claude-sonnet-4-5');
  assert.equal(one.id, 'claude-sonnet-4-5');
  assert.match(one.display_name, /gemini-3-flash-preview/);
  // A glob's name can be asked for, though not listed.
  assert.equal((await client.models.retrieve('claude-haiku-4-5')).id, 'claude-haiku-4-5');
  await assert.rejects(client.models.retrieve('gpt-4o'), (e) => e instanceof Anthropic.NotFoundError && e.type === 'not_found_error');
  // Nothing of that reached the upstream.
  assert.equal((await sim.log()).length, 1);
});

test('stop sequences: stop_reason stop_sequence with the sequence that fired, whole and streamed', async () => {
  const body = { model: 'claude-haiku-4-5', max_tokens: 1024, stop_sequences: ['answer'], messages: [{ role: 'user', content: 'say something' }] };
  const m = await client.messages.create(body);
  assert.equal(m.content[0].text, 'Simulated ');
  assert.equal(m.stop_reason, 'stop_sequence');
  assert.equal(m.stop_sequence, 'answer');
  const s = client.messages.stream(body);
  const fm = await s.finalMessage();
  assert.equal(fm.stop_reason, 'stop_sequence');
  assert.equal(fm.stop_sequence, 'answer');
  // Two that could have fired: which one cannot be known, and skiff does not guess.
  const two = await client.messages.create({ ...body, stop_sequences: ['answer', 'zebra'] });
  assert.equal(two.stop_reason, 'stop_sequence');
  assert.equal(two.stop_sequence, null);
  // max_tokens.
  const cut = await client.messages.create({ ...body, stop_sequences: undefined, max_tokens: 3, model: 'claude-opus-4-1' });
  assert.equal(cut.stop_reason, 'max_tokens');
});

test('client mistakes: 400 invalid_request_error naming the field, 401 authentication_error, 404 not_found_error naming the map key; nothing sent upstream', async () => {
  let r = await post('/v1/messages', { model: 'claude-haiku-4-5', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(r.status, 400);
  let b = await r.json();
  assert.equal(b.type, 'error');
  assert.equal(b.error.type, 'invalid_request_error');
  assert.match(b.error.message, /max_tokens/);

  await assert.rejects(
    client.messages.create({ model: 'claude-haiku-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }], mcp_servers: [] }),
    (e) => e instanceof Anthropic.BadRequestError && e.type === 'invalid_request_error' && /mcp_servers/.test(e.message),
  );
  r = await post('/v1/messages', '{"model": ');
  assert.equal(r.status, 400);
  assert.equal((await r.json()).error.type, 'invalid_request_error');

  const bad = new Anthropic({ apiKey: 'sk-wrong', baseURL: serve.url, maxRetries: 0 });
  await assert.rejects(
    bad.messages.create({ model: 'claude-haiku-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }),
    (e) => e instanceof Anthropic.AuthenticationError && e.status === 401 && e.type === 'authentication_error',
  );
  r = await fetch(`${serve.url}/v1/messages`, {
    method: 'POST', headers: { 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'claude-haiku-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal(r.status, 401);
  b = await r.json();
  assert.equal(b.error.type, 'authentication_error');
  assert.match(b.error.message, /x-api-key/);

  await assert.rejects(
    client.messages.create({ model: 'gpt-4o', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }),
    (e) => e instanceof Anthropic.NotFoundError && e.type === 'not_found_error' && /models:/.test(e.message) && /gpt-4o/.test(e.message),
  );
  r = await post('/v1/nothing-here', {});
  assert.equal(r.status, 404);
  assert.equal((await r.json()).error.type, 'not_found_error');
  assert.equal((await sim.log()).length, 0);
});

test('upstream errors in Anthropic\'s shape: 400, 403 permission_error, 500 api_error, 529 overloaded_error after the retries', async () => {
  const ask = (model = 'claude-haiku-4-5') => client.messages.create({ model, max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] });
  await sim.script({ match: { method: 'generateContent' }, reply: { status: 400, message: 'Request contains an invalid argument.' } });
  await assert.rejects(ask(), (e) => e instanceof Anthropic.BadRequestError && e.type === 'invalid_request_error' && /invalid argument/.test(e.message));

  await sim.script({ match: { method: 'generateContent' }, reply: { status: 403, errorStatus: 'PERMISSION_DENIED', message: 'You do not have permission to access the File files/abc123 or it may not exist.' } });
  await assert.rejects(ask(), (e) => e instanceof Anthropic.PermissionDeniedError && e.type === 'permission_error' && /files\/abc123/.test(e.message));

  await sim.reset();
  await sim.script({ match: { method: 'generateContent' }, reply: { status: 500 }, times: 0 });
  await assert.rejects(ask(), (e) => e.status === 500 && e.type === 'api_error');
  assert.ok((await sim.log()).length >= 2, 'a 500 was not retried');

  await sim.reset();
  await sim.script({ match: { method: 'generateContent' }, reply: { status: 503 }, times: 0 });
  await assert.rejects(ask(), (e) => e instanceof Anthropic.OverloadedError && e.status === 529 && e.type === 'overloaded_error');
  assert.ok((await sim.log()).length >= 2, 'a 503 was not retried');
  // No upstream body leaks through: only Anthropic's shape.
  const raw = await post('/v1/messages', { model: 'claude-haiku-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(raw.status, 529);
  const b = await raw.json();
  assert.deepEqual(Object.keys(b).sort(), ['error', 'type']);
  assert.deepEqual(Object.keys(b.error).sort(), ['message', 'type']);
});

test('after the first byte, a failure is an error event, never a clean message_stop', async () => {
  const text = { candidates: [{ content: { role: 'model', parts: [{ text: 'Half an ans' }] }, index: 0 }], usageMetadata: { promptTokenCount: 3, candidatesTokenCount: 3, totalTokenCount: 6 } };
  await sim.script({ match: { method: 'streamGenerateContent' }, reply: { stream: [text], error: { code: 503, message: 'The model is overloaded. Please try again later.', status: 'UNAVAILABLE' } } });
  const r = await post('/v1/messages', { model: 'claude-haiku-4-5', max_tokens: 64, stream: true, messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(r.status, 200);
  const evs = sse(await r.text());
  const names = evs.map((e) => e.event);
  assert.equal(names[0], 'message_start');
  assert.equal(names.at(-1), 'error', names.join(' '));
  assert.ok(!names.includes('message_stop'));
  assert.equal(evs.at(-1).data.error.type, 'overloaded_error');

  // The SDK throws it.
  await sim.script({ match: { method: 'streamGenerateContent' }, reply: { stream: [text], error: { code: 500, message: 'An internal error has occurred.', status: 'INTERNAL' } } });
  const s = client.messages.stream({ model: 'claude-haiku-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] });
  await assert.rejects((async () => { for await (const ev of s) void ev; })(), (e) => e instanceof Anthropic.APIError && e.type === 'api_error');
});

test('503 twice, then 200: one answer, x-skiff-attempts 3; Pro overloaded: Flash answers, under the name asked for', async () => {
  await sim.script({ match: { model: 'gemini-2.5-flash' }, reply: { status: 503 }, times: 2 });
  const { data: m, response } = await client.messages.create({ model: 'claude-haiku-4-5', max_tokens: 1024, messages: [{ role: 'user', content: 'hi' }] }).withResponse();
  assert.equal(m.stop_reason, 'end_turn');
  assert.equal(response.headers.get('x-skiff-attempts'), '3');
  assert.deepEqual((await sim.log()).map((e) => e.status), [503, 503, 200]);

  await sim.reset();
  await sim.script({ match: { model: 'gemini-2.5-pro' }, reply: { status: 503 }, times: 0 });
  const s = client.messages.stream({ model: 'claude-opus-4-1', max_tokens: 1024, messages: [{ role: 'user', content: 'hi' }] });
  const fm = await s.finalMessage();
  assert.equal(fm.model, 'claude-opus-4-1');
  assert.equal(fm.stop_reason, 'end_turn');
  const log = await sim.log();
  assert.ok(log.some((e) => e.model === 'gemini-2.5-pro' && e.status === 503));
  assert.equal(log.at(-1).model, 'gemini-2.5-flash');
  assert.equal(log.at(-1).status, 200);
});

test('a client that aborts mid-stream cancels the upstream call', async () => {
  await sim.script({ match: { method: 'streamGenerateContent' }, reply: { chunkMs: 400 } });
  const s = client.messages.stream({
    model: 'claude-haiku-4-5', max_tokens: 1024,
    messages: [{ role: 'user', content: 'Tell me a long story about boats, harbours, sailors and the sea at night' }],
  });
  for await (const ev of s) {
    if (ev.type === 'content_block_delta') { s.abort(); break; }
  }
  await waitFor('the upstream stream to be cancelled', async () => {
    const log = await sim.log();
    return log.length === 1 && log[0].aborted && !log[0].ended;
  }, 2000);
});

test('every key resting: 429 rate_limit_error with retry-after', async () => {
  const own = await startServe(config());
  try {
    await sim.script({ match: { model: 'gemini-2.5-flash' }, reply: { quota: 'minute', retryDelay: 30 }, times: 0 });
    const c = new Anthropic({ apiKey: TOKEN, baseURL: own.url, maxRetries: 0 });
    await assert.rejects(
      c.messages.create({ model: 'claude-haiku-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }),
      (e) => {
        assert.ok(e instanceof Anthropic.RateLimitError, String(e));
        assert.equal(e.type, 'rate_limit_error');
        const ra = Number(e.headers.get('retry-after'));
        assert.ok(ra >= 25 && ra <= 31, `retry-after ${e.headers.get('retry-after')}`);
        return true;
      },
    );
  } finally {
    await own.stop();
  }
});

test('thinking.include_thoughts: thoughts shown to a client that says nothing of thinking, not to one that turns it off', async () => {
  const own = await startServe(`${config()}thinking: {include_thoughts: true}\n`);
  try {
    const c = new Anthropic({ apiKey: TOKEN, baseURL: own.url, maxRetries: 0 });
    const ask = (extra) => c.messages.create({ model: 'claude-haiku-4-5', max_tokens: 2048, messages: [{ role: 'user', content: 'Think first' }], ...extra });
    const shown = await ask({});
    assert.deepEqual(shown.content.map((b) => b.type), ['thinking', 'text']);
    assert.ok(shown.content[0].thinking.length > 0);
    const off = await ask({ thinking: { type: 'disabled' } });
    assert.deepEqual(off.content.map((b) => b.type), ['text']);
  } finally {
    await own.stop();
  }
  // The shared skiff (include_thoughts off) shows none unasked.
  const m = await client.messages.create({ model: 'claude-haiku-4-5', max_tokens: 2048, messages: [{ role: 'user', content: 'Think first' }] });
  assert.deepEqual(m.content.map((b) => b.type), ['text']);
});

test('no thinking asked means none, as on Anthropic: a small max_tokens is all answer, not spent on thoughts', async () => {
  // The sim thinks for at least 64 tokens when let: with its default, nothing would be left.
  const ask = (extra) => client.messages.create({ model: 'claude-haiku-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'Say hello' }], ...extra });
  for (const extra of [{}, { thinking: { type: 'disabled' } }]) {
    const m = await ask(extra);
    assert.deepEqual(m.content.map((b) => b.type), ['text'], JSON.stringify(extra));
    assert.ok(m.content[0].text.length > 0, `empty text with ${JSON.stringify(extra)}`);
  }
  // The operator's thinking.default_budget still decides for the clients it names.
  const own = await startServe(`${config()}thinking: {default_budget: {gemini-2.5-flash: 1024}}\n`);
  try {
    const c = new Anthropic({ apiKey: TOKEN, baseURL: own.url, maxRetries: 0 });
    const m = await c.messages.create({ model: 'claude-haiku-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'Say hello' }] });
    // Its 1024 thinking tokens take all 64: no text, as Gemini itself would answer.
    assert.equal(m.stop_reason, 'max_tokens');
    assert.equal(m.content.filter((b) => b.type === 'text' && b.text).length, 0);
  } finally {
    await own.stop();
  }
});

test('an image by URL is fetched under media: (a loopback address only with allow_private) and reaches Gemini inline', async () => {
  // A 1x1 PNG, served by a local web server.
  const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');
  const { createServer } = await import('node:http');
  const web = createServer((req, res) => {
    if (req.url === '/cat.png') { res.writeHead(200, { 'content-type': 'image/png' }); res.end(png); return; }
    res.writeHead(200, { 'content-type': 'text/html' }); res.end('<p>not an image</p>');
  });
  await new Promise((r) => web.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${web.address().port}`;
  const ask = (c, source) => c.messages.create({
    model: 'claude-haiku-4-5', max_tokens: 1024,
    messages: [{ role: 'user', content: [{ type: 'image', source }, { type: 'text', text: 'What is this?' }] }],
  });
  const own = await startServe(`${config()}media: {allow_private: true}\n`);
  try {
    const c = new Anthropic({ apiKey: TOKEN, baseURL: own.url, maxRetries: 0 });
    const byUrl = await ask(c, { type: 'url', url: `${url}/cat.png` });
    const inline = await ask(c, { type: 'base64', media_type: 'image/png', data: png.toString('base64') });
    assert.match(byUrl.content[0].text, /^Simulated answer to "What is this\?/);
    // The sim counts 258 tokens for an inline image: both carried one, with the same bytes.
    assert.equal(byUrl.usage.input_tokens, inline.usage.input_tokens);
    const log = await sim.log();
    assert.equal(log.at(-1).body_fnv, log.at(-2).body_fnv, 'the URL image did not reach Gemini as the inline one does');
    await assert.rejects(ask(c, { type: 'url', url: `${url}/page.html` }),
      (e) => e instanceof Anthropic.BadRequestError && /text\/html, not an image/.test(e.message));
  } finally {
    await own.stop();
  }
  // The shared skiff keeps the default: no loopback or private address.
  const before = (await sim.log()).length;
  await assert.rejects(ask(client, { type: 'url', url: `${url}/cat.png` }),
    (e) => e instanceof Anthropic.BadRequestError && e.type === 'invalid_request_error' && /image/.test(e.message));
  assert.equal((await sim.log()).length, before, 'a refused image cost an upstream call');
  web.close();
});
