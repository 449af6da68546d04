// CORS with a real browser: Debian's chromium driven by playwright-core. A page the test
// serves on one loopback origin (listed in cors.origins) calls skiff on another with fetch
// and an x-goog-api-key header, so the browser sends a preflight first, and reads
// x-skiff-model; a page on an origin that is not listed is blocked by the browser.
// Skipped when /usr/bin/chromium is not installed (scripts/bootstrap test installs it).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSim, startServe } from './lib.mjs';

const CHROMIUM = '/usr/bin/chromium';
const KEY = 'AIzaSyCorsBrowserTestKey0000000000001';
const TOKEN = 'sk-cors-browser-0123456789abcdef';
const GEN = '/v1beta/models/gemini-2.5-flash:generateContent';

let playwright = null;
try {
  playwright = await import('playwright-core');
} catch {
  playwright = null;
}
const skip = !existsSync(CHROMIUM) ? `${CHROMIUM} is not installed` : !playwright ? 'playwright-core is not installed' : false;

let sim, serve, listed, other, browser;

function pageServer() {
  return new Promise((resolve) => {
    const s = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><title>app</title><p>app</p>');
    });
    s.listen(0, '127.0.0.1', () => resolve(s));
  });
}
const origin = (s) => `http://127.0.0.1:${s.address().port}`;

before(async () => {
  if (skip) return;
  listed = await pageServer();
  other = await pageServer();
  sim = await startSim(['--rpm', '100000', '--rpd', '1000000', '--tpm', '1000000000']);
  serve = await startServe(`
tokens: [{name: web, token: ${TOKEN}}]
upstreams: {gemini: {base_url: ${sim.url}, keys: [${KEY}]}}
cors: {origins: ["${origin(listed)}"]}
`);
  browser = await playwright.chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'skiff-chromium-')), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});

after(async () => {
  await browser?.close();
  await serve?.stop();
  await sim?.stop();
  listed?.close();
  other?.close();
});

// Runs fetch in a page loaded from pageOrigin; resolves what the page could read.
async function callFrom(pageOrigin) {
  const page = await browser.newPage();
  try {
    await page.goto(`${pageOrigin}/`);
    return await page.evaluate(async ({ url, token }) => {
      try {
        const r = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-goog-api-key': token },
          body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'Hello' }] }] }),
        });
        const body = await r.json();
        return { status: r.status, model: r.headers.get('x-skiff-model'), attempts: r.headers.get('x-skiff-attempts'), text: body.candidates?.[0]?.content?.parts?.[0]?.text };
      } catch (e) {
        return { error: String(e) };
      }
    }, { url: `${serve.url}${GEN}`, token: TOKEN });
  } finally {
    await page.close();
  }
}

test('a page on a listed origin calls skiff with x-goog-api-key and reads x-skiff-model', { skip }, async () => {
  const r = await callFrom(origin(listed));
  assert.equal(r.error, undefined, `the browser blocked the call: ${r.error}`);
  assert.equal(r.status, 200);
  assert.equal(r.model, 'gemini-2.5-flash');
  assert.equal(r.attempts, '1');
  assert.ok(r.text, 'the page could not read the answer');
});

test('a page on an origin that is not listed is blocked, and nothing reaches the upstream', { skip }, async () => {
  await sim.reset();
  const r = await callFrom(origin(other));
  assert.match(r.error || '', /TypeError|Failed to fetch/);
  assert.equal((await sim.log()).length, 0, 'the refused preflight let the call go upstream');
});
