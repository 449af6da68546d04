// The OpenAI door (issue 14): the official `openai` SDK through skiff to `skiff sim`, which
// answers tools, signatures (and refuses a replayed Gemini 3 call without one), JSON schemas,
// thoughts and embeddings as Gemini does. What the sim received is checked in its log.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import OpenAI from 'openai';
import { startSim, startServe } from './lib.mjs';

const KEY = 'AIzaSyTESTkeyOpenAI00000000000000000001';
const TOKEN = 'sk-test-openai-0123456789';
let sim, serve, client, media, mediaHits = 0;

const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');

const tools = [
  { type: 'function', function: { name: 'getWeather', description: 'The weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false } } },
  { type: 'function', function: { name: 'getTime', description: 'The time in a zone', parameters: { type: 'object', properties: { zone: { type: 'string', enum: ['UTC', 'CET'] } } } } },
];

before(async () => {
  // A media server the test runs: skiff fetches image URLs from it (a loopback address, so
  // this skiff allows private addresses; a second one below does not).
  media = http.createServer((req, res) => {
    mediaHits++;
    if (req.url === '/cat.png') { res.writeHead(200, { 'content-type': 'image/png' }); res.end(PNG); return; }
    if (req.url === '/huge.png') { res.writeHead(200, { 'content-type': 'image/png' }); res.end(Buffer.alloc(300000)); return; }
    res.writeHead(404); res.end();
  });
  await new Promise((r) => media.listen(0, '127.0.0.1', r));
  sim = await startSim(['--rpm', '100000', '--rpd', '1000000', '--tpm', '1000000000']);
  serve = await startServe(`
tokens: [{name: app, token: ${TOKEN}}]
upstreams: {gemini: {base_url: ${sim.url}, keys: [${KEY}]}}
models: {gpt-4o-mini: gemini-2.5-flash, gpt-5: gemini-3-flash-preview, "gpt-*": gemini-2.5-pro, text-embedding-3-small: gemini-embedding-001}
fallbacks: {gemini-2.5-pro: [gemini-2.5-flash]}
media: {allow_private: true, max_bytes: 200000}
retry: {max_attempts: 3, base_delay_ms: 10, max_delay_ms: 50}
storage: {sqlite: ""}
workers: 1
`);
  client = new OpenAI({ apiKey: TOKEN, baseURL: `${serve.url}/v1`, maxRetries: 0 });
});

after(async () => {
  await serve?.stop();
  await sim?.stop();
  media?.close();
  for (const s of [KEY]) assert.ok(!serve.stderr.includes(s), 'a pool key appeared in the logs');
});

const mediaUrl = (p) => `http://127.0.0.1:${media.address().port}${p}`;

test('chat: an answer in OpenAI\'s shape, under the name asked for, x-skiff-model says who answered', async () => {
  const { data, response } = await client.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Say hello' }],
  }).withResponse();
  assert.equal(data.object, 'chat.completion');
  assert.equal(data.model, 'gpt-4o-mini');
  assert.equal(response.headers.get('x-skiff-model'), 'gemini-2.5-flash');
  assert.match(data.choices[0].message.content, /Simulated answer to "Say hello/);
  assert.equal(data.choices[0].message.role, 'assistant');
  assert.equal(data.choices[0].finish_reason, 'stop');
  assert.ok(data.usage.prompt_tokens > 0 && data.usage.completion_tokens > 0);
  assert.equal(data.usage.total_tokens, data.usage.prompt_tokens + data.usage.completion_tokens);
  assert.ok(data.usage.completion_tokens_details.reasoning_tokens > 0, 'a 2.5 model thinks: reasoning tokens are counted');
  const log = await sim.log();
  assert.equal(log.at(-1).path, '/v1beta/models/gemini-2.5-flash:generateContent');
  assert.equal(log.at(-1).key, KEY);
});

test('chat stream: role first, content deltas, one finish_reason, usage only when asked, [DONE]', async () => {
  const chunks = [];
  for await (const c of await client.chat.completions.create({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'Tell me a long story about boats' }] }))
    chunks.push(c);
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
  assert.match(text, /Simulated answer to "Tell me a long story/);
  assert.equal(chunks.filter((c) => c.choices[0]?.finish_reason).length, 1);
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
  assert.ok(chunks.every((c) => !c.usage), 'usage without stream_options.include_usage');
  assert.ok(chunks.every((c) => c.model === 'gpt-4o-mini'));

  const withUsage = [];
  for await (const c of await client.chat.completions.create({ model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'Count to three' }] }))
    withUsage.push(c);
  const last = withUsage.at(-1);
  assert.deepEqual(last.choices, []);
  assert.ok(last.usage.prompt_tokens > 0 && last.usage.total_tokens >= last.usage.completion_tokens);
});

test('a two-turn tool loop with parallel calls on Gemini 3: signatures go out and come back', async () => {
  const messages = [{ role: 'user', content: 'Call getWeather for Oslo and getTime' }];
  const first = await client.chat.completions.create({ model: 'gpt-5', messages, tools });
  const msg = first.choices[0].message;
  assert.equal(first.choices[0].finish_reason, 'tool_calls');
  assert.deepEqual(msg.tool_calls.map((c) => c.function.name), ['getWeather', 'getTime']);
  assert.equal(typeof JSON.parse(msg.tool_calls[0].function.arguments).city, 'string');
  for (const c of msg.tool_calls) assert.match(c.id, /^call_[A-Za-z0-9]{24}$/, 'the id is not a signature');
  assert.ok(msg.tool_calls[0].extra_content.google.thought_signature, 'the first call carries its signature');
  const results = msg.tool_calls.map((c) => ({ role: 'tool', tool_call_id: c.id, content: JSON.stringify({ ok: c.function.name }) }));

  // The client sends everything back, extra_content included.
  const second = await client.chat.completions.create({ model: 'gpt-5', messages: [...messages, msg, ...results], tools });
  assert.match(second.choices[0].message.content, /getWeather/);
  assert.equal(second.choices[0].finish_reason, 'stop');

  // A client that drops extra_content (most do): skiff's cache restores the signature.
  const bare = { role: 'assistant', content: null, tool_calls: msg.tool_calls.map(({ id, type, function: f }) => ({ id, type, function: f })) };
  const third = await client.chat.completions.create({ model: 'gpt-5', messages: [...messages, bare, ...results], tools });
  assert.match(third.choices[0].message.content, /getTime/);
  // What the sim got: the function calls in one model turn, the responses in one user turn.
  const log = await sim.log();
  assert.ok(log.slice(-3).every((e) => e.status === 200));
});

test('a streamed tool loop: each call its own index, finish_reason tool_calls', async () => {
  const calls = new Map();
  let finish;
  for await (const c of await client.chat.completions.create({ model: 'gpt-5', stream: true, tools, messages: [{ role: 'user', content: 'Call getWeather for Rome and getTime' }] })) {
    for (const d of c.choices[0]?.delta?.tool_calls ?? []) {
      const e = calls.get(d.index) ?? { args: '' };
      if (d.id) e.id = d.id;
      if (d.function?.name) e.name = d.function.name;
      e.args += d.function?.arguments ?? '';
      calls.set(d.index, e);
    }
    if (c.choices[0]?.finish_reason) finish = c.choices[0].finish_reason;
  }
  assert.deepEqual([...calls.keys()], [0, 1]);
  assert.deepEqual([...calls.values()].map((e) => e.name), ['getWeather', 'getTime']);
  for (const e of calls.values()) JSON.parse(e.args);
  assert.equal(finish, 'tool_calls');
});

test('response_format json_schema with $defs: the answer is JSON of that schema', async () => {
  const schema = {
    type: 'object',
    $defs: { city: { type: 'object', properties: { name: { type: 'string' }, pop: { type: 'integer' } }, required: ['name', 'pop'], additionalProperties: false } },
    properties: { cities: { type: 'array', items: { $ref: '#/$defs/city' }, minItems: 2 } },
    required: ['cities'],
    additionalProperties: false,
  };
  const r = await client.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'Two cities' }],
    response_format: { type: 'json_schema', json_schema: { name: 'cities', schema, strict: true } },
  });
  const v = JSON.parse(r.choices[0].message.content);
  assert.ok(v.cities.length >= 2);
  assert.equal(typeof v.cities[0].name, 'string');
  assert.ok(Number.isInteger(v.cities[0].pop));
  const obj = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'JSON please' }], response_format: { type: 'json_object' } });
  JSON.parse(obj.choices[0].message.content);
});

test('reasoning_effort: mapped per model, a value the model refuses is a local 400', async () => {
  const none = await client.chat.completions.create({ model: 'gpt-4o-mini', reasoning_effort: 'none', messages: [{ role: 'user', content: 'Quick' }] });
  assert.equal(none.usage.completion_tokens_details?.reasoning_tokens ?? 0, 0, 'none on 2.5 Flash is a budget of 0');
  const high = await client.chat.completions.create({ model: 'gpt-4o-mini', reasoning_effort: 'high', messages: [{ role: 'user', content: 'Think' }] });
  assert.ok(high.usage.completion_tokens_details.reasoning_tokens > 0);
  const before = (await sim.log()).length;
  await assert.rejects(
    client.chat.completions.create({ model: 'gemini-3.1-pro-preview', reasoning_effort: 'medium', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e.status === 400 && e.type === 'invalid_request_error' && e.param === 'reasoning_effort' && /low.*high/.test(e.message),
  );
  assert.equal((await sim.log()).length, before, 'a local refusal cost an upstream call');
});

test('thoughts come back as reasoning_content when the client asks for them', async () => {
  const r = await client.chat.completions.create({
    model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Think about tides' }],
    extra_body: { google: { thinking_config: { include_thoughts: true } } },
  });
  assert.ok(r.choices[0].message.reasoning_content, 'no reasoning_content');
  assert.ok(!r.choices[0].message.content.includes(r.choices[0].message.reasoning_content));
  const plain = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Think about tides' }] });
  assert.equal(plain.choices[0].message.reasoning_content, undefined);
});

test('image input: a data URI, and an http URL skiff fetches', async () => {
  const ask = (url) => client.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: [{ type: 'text', text: 'What is in this image?' }, { type: 'image_url', image_url: { url } }] }],
  });
  const a = await ask(`data:image/png;base64,${PNG.toString('base64')}`);
  assert.ok(a.usage.prompt_tokens >= 258, 'the image did not reach the sim');
  const hits = mediaHits;
  const b = await ask(mediaUrl('/cat.png'));
  assert.equal(mediaHits, hits + 1);
  assert.equal(b.usage.prompt_tokens, a.usage.prompt_tokens, 'the fetched image is the same image');
  await assert.rejects(ask(mediaUrl('/huge.png')), (e) => e.status === 400 && /media\.max_bytes/.test(e.message));
  await assert.rejects(ask(mediaUrl('/gone.png')), (e) => e.status === 400 && /HTTP 404/.test(e.message));
});

test('image URLs on a private address are refused unless media.allow_private', async () => {
  const strict = await startServe(`
tokens: [{name: app, token: ${TOKEN}}]
upstreams: {gemini: {base_url: ${sim.url}, keys: [${KEY}]}}
workers: 1
`);
  try {
    const c = new OpenAI({ apiKey: TOKEN, baseURL: `${strict.url}/v1`, maxRetries: 0 });
    const hits = mediaHits, calls = (await sim.log()).length;
    await assert.rejects(
      c.chat.completions.create({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: mediaUrl('/cat.png').replace('127.0.0.1', 'localhost') } }] }] }),
      (e) => e.status === 400 && e.type === 'invalid_request_error' && /media\.allow_private: true/.test(e.message),
    );
    assert.equal(mediaHits, hits, 'skiff connected to a loopback address');
    assert.equal((await sim.log()).length, calls, 'a refused image cost an upstream call');
  } finally {
    await strict.stop();
  }
});

test('embeddings: one input, a batch, dimensions and base64', async () => {
  const one = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'hello world' });
  assert.equal(one.object, 'list');
  assert.equal(one.data.length, 1);
  assert.ok(one.data[0].embedding.length > 0);
  assert.equal(one.model, 'text-embedding-3-small');
  assert.equal((await sim.log()).at(-1).method, 'embedContent');
  const batch = await client.embeddings.create({ model: 'gemini-embedding-001', input: ['a', 'b', 'c'], dimensions: 8, encoding_format: 'float' });
  assert.deepEqual(batch.data.map((d) => d.index), [0, 1, 2]);
  assert.ok(batch.data.every((d) => d.embedding.length === 8));
  assert.equal((await sim.log()).at(-1).method, 'batchEmbedContents');
  // The SDK asks for base64 by default and decodes it: the same floats.
  const b64 = await client.embeddings.create({ model: 'gemini-embedding-001', input: ['a'], dimensions: 8 });
  assert.deepEqual(b64.data[0].embedding.map((x) => x.toFixed(5)), batch.data[0].embedding.map((x) => x.toFixed(5)));
});

test('models: the catalog and the map\'s names, one by id, a 404 in OpenAI\'s shape', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.ok(ids.includes('gemini-2.5-flash'));
  assert.ok(ids.includes('gpt-4o-mini'));
  assert.ok(!ids.includes('gpt-*'));
  const m = await client.models.retrieve('gpt-4o-mini');
  assert.equal(m.object, 'model');
  assert.equal(m.id, 'gpt-4o-mini');
  await assert.rejects(client.models.retrieve('claude-9'), (e) => e.status === 404 && e.type === 'not_found_error');
  // The same under /openai/v1, and with no Gemini credential /v1/models is OpenAI's.
  const r = await fetch(`${serve.url}/openai/v1/models`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(r.status, 200);
  assert.equal((await r.json()).object, 'list');
});

test('errors: OpenAI\'s shape for 400, 401, 404, 429 with Retry-After, 5xx', async () => {
  const bad = new OpenAI({ apiKey: 'sk-wrong', baseURL: `${serve.url}/v1`, maxRetries: 0 });
  await assert.rejects(bad.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e.status === 401 && e.type === 'authentication_error');
  await assert.rejects(client.chat.completions.create({ model: 'claude-9', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e.status === 404 && e.type === 'not_found_error' && e.code === 'model_not_found' && /claude-9/.test(e.message));
  await assert.rejects(client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], stop: ['a', 'b', 'c', 'd', 'e', 'f'] }),
    (e) => e.status === 400 && e.type === 'invalid_request_error' && e.param === 'stop');
  const raw = await fetch(`${serve.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '{"model": ' });
  assert.equal(raw.status, 400);
  assert.equal((await raw.json()).error.type, 'invalid_request_error');

  // A day's quota gone (for a model the other tests do not use: the key rests for it).
  await sim.script({ match: { model: 'gemini-2.5-flash-lite' }, reply: { quota: 'day' }, times: 0 });
  try {
    const r = await fetch(`${serve.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gemini-2.5-flash-lite', messages: [{ role: 'user', content: 'x' }] }) });
    assert.equal(r.status, 429);
    assert.ok(Number(r.headers.get('retry-after')) > 0, 'no Retry-After');
    const e = (await r.json()).error;
    assert.equal(e.type, 'rate_limit_error');
    assert.equal(e.code, 'resource_exhausted');
    assert.match(e.message, /quota/i);
  } finally {
    await sim.reset();
  }
  await sim.script({ match: { model: 'gemini-3.5-flash' }, reply: { status: 500 }, times: 0 });
  try {
    await assert.rejects(client.chat.completions.create({ model: 'gemini-3.5-flash', messages: [{ role: 'user', content: 'x' }] }),
      (e) => e.status >= 500 && e.type === 'api_error');
  } finally {
    await sim.reset();
  }
});

test('503 then 200, and Pro overloaded answered by Flash, seen through the OpenAI door', async () => {
  await sim.script({ match: { model: 'gemini-2.5-flash' }, reply: { status: 503 }, times: 1 });
  const { data, response } = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'retry me' }] }).withResponse();
  assert.match(data.choices[0].message.content, /retry me/);
  assert.equal(response.headers.get('x-skiff-attempts'), '2');

  await sim.script({ match: { model: 'gemini-2.5-pro' }, reply: { status: 503 }, times: 0 });
  try {
    const fb = await client.chat.completions.create({ model: 'gpt-4-turbo', messages: [{ role: 'user', content: 'fall back' }] }).withResponse();
    assert.equal(fb.data.model, 'gpt-4-turbo');
    assert.equal(fb.response.headers.get('x-skiff-model'), 'gemini-2.5-flash');
    const log = await sim.log();
    assert.equal(log.at(-1).model, 'gemini-2.5-flash');
    assert.ok(log.some((e) => e.model === 'gemini-2.5-pro' && e.status === 503));
  } finally {
    await sim.reset();
  }
});

test('Responses API: text, stream, and a tool call round', async () => {
  const r = await client.responses.create({ model: 'gpt-4o-mini', instructions: 'Be brief.', input: 'Say hi' });
  assert.equal(r.object, 'response');
  assert.equal(r.status, 'completed');
  assert.match(r.output_text, /Simulated answer to "Say hi/);
  assert.ok(r.usage.input_tokens > 0);

  const types = [];
  let text = '';
  for await (const e of await client.responses.create({ model: 'gpt-4o-mini', input: 'Stream a story', stream: true })) {
    types.push(e.type);
    if (e.type === 'response.output_text.delta') text += e.delta;
  }
  assert.equal(types[0], 'response.created');
  assert.ok(types.includes('response.output_item.added'));
  assert.equal(types.at(-1), 'response.completed');
  assert.match(text, /Simulated answer to "Stream a story/);

  const rtools = tools.map((t) => ({ type: 'function', ...t.function }));
  const first = await client.responses.create({ model: 'gpt-5', input: 'Call getWeather for Lima', tools: rtools });
  const call = first.output.find((o) => o.type === 'function_call');
  assert.equal(call.name, 'getWeather');
  const second = await client.responses.create({
    model: 'gpt-5', tools: rtools,
    input: [{ role: 'user', content: 'Call getWeather for Lima' }, { type: 'function_call', call_id: call.call_id, name: call.name, arguments: call.arguments }, { type: 'function_call_output', call_id: call.call_id, output: '{"tempC": 19}' }],
  });
  assert.match(second.output_text, /tempC/);
  await assert.rejects(client.responses.create({ model: 'gpt-4o-mini', input: 'x', previous_response_id: 'resp_123' }),
    (e) => e.status === 400 && e.param === 'previous_response_id');
});

// Raw SSE through the door: every byte until the connection ends, cleanly or not.
function rawStream(body) {
  return new Promise((resolve, reject) => {
    const u = new URL(`${serve.url}/v1/chat/completions`);
    const r = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' } }, (res) => {
      let text = '', complete = false;
      res.on('data', (d) => { text += d; });
      res.on('end', () => { complete = true; });
      res.on('close', () => resolve({ status: res.statusCode, text, complete: complete && res.complete }));
      res.on('error', () => {});
    });
    r.on('error', reject);
    r.end(JSON.stringify(body));
  });
}

test('a stream cut after it started: an error chunk and no [DONE], never a clean finish', async () => {
  const ev = (t) => ({ candidates: [{ content: { role: 'model', parts: [{ text: t }] }, index: 0 }], modelVersion: 'gemini-2.5-flash' });
  await sim.script({ match: { model: 'gemini-2.5-flash', method: 'streamGenerateContent' }, reply: { stream: [ev('Once upon '), ev('a time '), ev('there was')], resetAfter: 2 }, times: 1 });
  const r = await rawStream({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'a story' }] });
  assert.equal(r.status, 200);
  assert.match(r.text, /Once upon/);
  const datas = r.text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6));
  assert.ok(!datas.includes('[DONE]'), 'a broken stream ended with [DONE]');
  const last = JSON.parse(datas.at(-1));
  assert.ok(last.error && last.error.message, `the last chunk is not an error: ${datas.at(-1)}`);
  assert.ok(!r.complete, 'the body ended cleanly');
  assert.ok(!datas.some((d) => d.includes('"finish_reason":"stop"')), 'a cut answer claimed finish_reason stop');
});
