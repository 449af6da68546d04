// Function calling, thought signatures, structured output and thoughts, through skiff to
// `skiff sim`, driven by the official @google/genai SDK: the sim answers tools as Gemini
// does, and a Gemini 3 model refuses a replayed call without the signature it gave.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { GoogleGenAI, ApiError } from '@google/genai';
import { startSim, startServe } from './lib.mjs';

const KEY = 'AIzaSyTESTkeyTools0000000000000000000001';
let sim, serve, ai;

const weather = {
  name: 'getWeather',
  description: 'The weather in a city',
  parametersJsonSchema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};
const time = {
  name: 'getTime',
  description: 'The time in a zone',
  parametersJsonSchema: { type: 'object', properties: { zone: { type: 'string', enum: ['UTC', 'CET'] } } },
};
const config = { tools: [{ functionDeclarations: [weather, time] }] };

before(async () => {
  sim = await startSim();
  serve = await startServe(`
upstreams: {gemini: {base_url: ${sim.url}, keys: [${KEY}]}}
storage: {sqlite: ""}
workers: 1
`);
  ai = new GoogleGenAI({ apiKey: 'any', httpOptions: { baseUrl: serve.url } });
});

after(async () => {
  await serve?.stop();
  await sim?.stop();
});

test('a prompt that names two tools gets two calls in one turn, the first signed', async () => {
  const r = await ai.models.generateContent({ model: 'gemini-3-flash-preview', contents: 'Call getWeather for Paris and getTime', config });
  const calls = r.functionCalls;
  assert.deepEqual(calls.map((c) => c.name), ['getWeather', 'getTime']);
  assert.equal(typeof calls[0].args.city, 'string');
  assert.equal(calls[1].args.zone, 'UTC');
  const parts = r.candidates[0].content.parts;
  assert.ok(parts[0].thoughtSignature, 'the first call carries no thoughtSignature');
  assert.equal(parts[1].thoughtSignature, undefined);
  assert.equal(r.candidates[0].finishReason, 'STOP');
});

test('a tool loop: the second turn succeeds with the signature and fails without it', async () => {
  const user = { role: 'user', parts: [{ text: 'What does getWeather say for Oslo?' }] };
  const first = await ai.models.generateContent({ model: 'gemini-3-flash-preview', contents: [user], config });
  const modelTurn = first.candidates[0].content;
  const results = { role: 'user', parts: [{ functionResponse: { name: 'getWeather', response: { tempC: 21 } } }] };

  const second = await ai.models.generateContent({ model: 'gemini-3-flash-preview', contents: [user, modelTurn, results], config });
  assert.match(second.text, /getWeather/);
  assert.match(second.text, /"tempC":21/);

  // The same turn with the signature dropped, as lossy relays do: Gemini 3's 400.
  const stripped = { role: 'model', parts: modelTurn.parts.map(({ thoughtSignature, ...p }) => p) };
  await assert.rejects(
    ai.models.generateContent({ model: 'gemini-3-flash-preview', contents: [user, stripped, results], config }),
    (e) => e instanceof ApiError && e.status === 400 && /missing a thought_signature/.test(e.message),
  );
  // The client's mistake cost the key nothing.
  const health = await (await fetch(`${serve.url}/healthz`)).json();
  assert.equal(health.usable_keys, 1);

  // A 2.5 model does not check.
  const ok = await ai.models.generateContent({ model: 'gemini-2.5-flash', contents: [user, stripped, results], config });
  assert.match(ok.text, /tempC/);
});

test('a streamed call arrives whole in one event', async () => {
  const calls = [];
  for await (const chunk of await ai.models.generateContentStream({ model: 'gemini-2.5-flash', contents: 'please run getTime', config })) {
    if (chunk.functionCalls) calls.push(...chunk.functionCalls);
  }
  assert.deepEqual(calls.map((c) => c.name), ['getTime']);
});

test('functionCallingConfig: NONE calls nothing, ANY calls an allowed function', async () => {
  const none = await ai.models.generateContent({
    model: 'gemini-2.5-flash', contents: 'getWeather for Rome',
    config: { ...config, toolConfig: { functionCallingConfig: { mode: 'NONE' } } },
  });
  assert.equal(none.functionCalls, undefined);
  assert.ok(none.text.length > 0);
  const any = await ai.models.generateContent({
    model: 'gemini-2.5-flash', contents: 'hello',
    config: { ...config, toolConfig: { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['getTime'] } } },
  });
  assert.deepEqual(any.functionCalls.map((c) => c.name), ['getTime']);
});

test('responseJsonSchema with $defs: the answer is JSON of that schema', async () => {
  const schema = {
    type: 'object',
    $defs: { Item: { type: 'object', properties: { name: { type: 'string' }, qty: { type: 'integer', minimum: 1 } }, required: ['name', 'qty'], additionalProperties: false } },
    properties: { items: { type: 'array', items: { $ref: '#/$defs/Item' }, minItems: 2 } },
    required: ['items'],
  };
  const r = await ai.models.generateContent({
    model: 'gemini-2.5-flash', contents: 'List two items',
    config: { responseMimeType: 'application/json', responseJsonSchema: schema },
  });
  const v = JSON.parse(r.text);
  assert.equal(v.items.length, 2);
  for (const it of v.items) {
    assert.equal(typeof it.name, 'string');
    assert.ok(Number.isInteger(it.qty) && it.qty >= 1);
    assert.deepEqual(Object.keys(it).sort(), ['name', 'qty']);
  }
});

test('includeThoughts gives a thought part and thoughtsTokenCount', async () => {
  const r = await ai.models.generateContent({
    model: 'gemini-2.5-flash', contents: 'Think first',
    config: { thinkingConfig: { includeThoughts: true } },
  });
  const parts = r.candidates[0].content.parts;
  assert.equal(parts[0].thought, true);
  assert.ok(r.usageMetadata.thoughtsTokenCount > 0);
});

test('a stop sequence ends the text before it', async () => {
  const r = await ai.models.generateContent({ model: 'gemini-2.5-flash', contents: 'say something', config: { stopSequences: ['answer'] } });
  assert.equal(r.text, 'Simulated ');
  assert.equal(r.candidates[0].finishReason, 'STOP');
});
