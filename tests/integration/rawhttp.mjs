// Raw HTTP over TCP for the tests that must send bytes no HTTP client library would
// (strict_http, limits), and a raw upstream that records every request head it gets.
import net from 'node:net';
import { readFileSync } from 'node:fs';

// Parses the first response in buf: {status, headers, body, rest} or null while incomplete.
// A body without Content-Length or chunked framing runs to the end (ended).
export function parseResponse(buf, ended = false) {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const head = buf.subarray(0, end).toString('latin1');
  const lines = head.split('\r\n');
  const status = Number(lines[0].split(' ')[1]);
  const headers = {};
  for (const l of lines.slice(1)) {
    const c = l.indexOf(':');
    headers[l.slice(0, c).toLowerCase()] = l.slice(c + 1).trim();
  }
  let body = buf.subarray(end + 4);
  if (headers['content-length'] !== undefined) {
    const n = Number(headers['content-length']);
    if (body.length < n) return null;
    return { status, headers, body: body.subarray(0, n).toString(), rest: body.subarray(n) };
  }
  if (headers['transfer-encoding'] === 'chunked') {
    const parts = [];
    let off = 0;
    for (;;) {
      const lf = body.indexOf('\r\n', off);
      if (lf < 0) return null;
      const size = parseInt(body.subarray(off, lf).toString(), 16);
      if (body.length < lf + 2 + size + 2) return null;
      if (size === 0) return { status, headers, body: Buffer.concat(parts).toString(), rest: body.subarray(lf + 4) };
      parts.push(body.subarray(lf + 2, lf + 2 + size));
      off = lf + 2 + size + 2;
    }
  }
  if (!ended) return null;
  return { status, headers, body: body.toString(), rest: Buffer.alloc(0) };
}

// Sends bytes (a string in latin1, or a Buffer) to url's host:port and resolves the first
// response, with closed: whether the server closed the connection after it (an answer with
// `connection: close` is awaited until the close).
export function rawRequest(url, bytes, { timeoutMs = 10000 } = {}) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(port), hostname);
    let buf = Buffer.alloc(0), done = false, res = null;
    const finish = (closed) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (!res) res = parseResponse(buf, true);
      if (!res) reject(new Error(`no response (got ${JSON.stringify(buf.toString('latin1').slice(0, 200))})`));
      else resolve({ ...res, closed });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    sock.on('error', () => finish(true));
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!res) res = parseResponse(buf);
      // A kept-alive answer resolves once complete; one that closes, once closed.
      if (res && !/close/i.test(res.headers.connection || '')) finish(false);
    });
    sock.on('end', () => finish(true));
    sock.on('connect', () => sock.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes));
  });
}

// A raw upstream: records each request's head (as bytes came, latin1) and answers with
// answer(req, sock) (default: a small generateContent success).
export async function startRawUpstream(answer) {
  const up = { requests: [], sockets: new Set() };
  const ok = JSON.stringify({
    candidates: [{ content: { parts: [{ text: 'hi' }], role: 'model' }, finishReason: 'STOP', index: 0 }],
    usageMetadata: { totalTokenCount: 3 },
  });
  answer = answer || ((req, sock) => sock.write(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${ok.length}\r\n\r\n${ok}`));
  up.server = net.createServer((sock) => {
    up.sockets.add(sock);
    sock.on('error', () => {});
    sock.on('close', () => up.sockets.delete(sock));
    let buf = Buffer.alloc(0);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        const m = head.match(/\r\ncontent-length:\s*(\d+)/i);
        const len = m ? Number(m[1]) : 0;
        if (buf.length < end + 4 + len) return;
        buf = buf.subarray(end + 4 + len);
        const req = { head };
        up.requests.push(req);
        answer(req, sock);
      }
    });
  });
  up.server.listen(0, '127.0.0.1');
  await new Promise((r) => up.server.once('listening', r));
  up.url = `http://127.0.0.1:${up.server.address().port}`;
  up.close = () => {
    for (const s of up.sockets) s.destroy();
    return new Promise((r) => up.server.close(r));
  };
  return up;
}

// The resident set of a process in bytes (VmRSS of /proc/PID/status).
export function rssBytes(pid) {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
  if (!m) throw new Error(`process ${pid} has no VmRSS: it has exited`);
  return Number(m[1]) * 1024;
}
