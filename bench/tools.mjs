// bench/tools.mjs: the small clients `make bench` needs that wrk and hey do not cover.
// Only Node's built-in modules, so it runs before (or without) `npm install`.
//
//   node tools.mjs sse  --port P --path PATH [--headers JSON] --body FILE --n N --conc C
//       S4: N streaming requests (C at a time, one connection each, Connection: close).
//       Timestamps every SSE event as it arrives and prints one line of key=value figures:
//       time to first event (from the request's last byte written), gaps between events,
//       events per stream.
//       --tls CA_FILE: over TLS (HTTP/1.1), trusting CA_FILE (S4's direct https upstream).
//   node tools.mjs hold --port P --path PATH [--headers JSON] --body FILE --n N --batch B
//       S5: opens N streams (at most B connecting at once), waits for the first event of
//       each, prints "READY ok=.. failed=.. secs=..", holds them until SIGTERM.
//   node tools.mjs rate --port P --path PATH [--headers JSON] --body FILE --rate R --dur S
//       S6: open-loop load: R requests/s for S seconds whatever the answers do (no
//       coordinated omission), keep-alive, unlimited sockets. Prints success and latency.
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import http from 'node:http';

function args(argv) {
    const o = {};
    for (let i = 0; i < argv.length; i++) {
        if (argv[i].startsWith('--')) o[argv[i].slice(2)] = argv[i + 1], i++;
    }
    return o;
}

const mode = process.argv[2];
const a = args(process.argv.slice(3));
const host = a.host || '127.0.0.1';
const port = Number(a.port);
const path = a.path;
const headers = a.headers ? JSON.parse(a.headers) : {};
const body = a.body ? fs.readFileSync(a.body) : Buffer.alloc(0);

function rawRequest(close) {
    let h = `POST ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${body.length}\r\nAccept: text/event-stream\r\n`;
    for (const [k, v] of Object.entries(headers)) h += `${k}: ${v}\r\n`;
    if (close) h += 'Connection: close\r\n';
    return Buffer.concat([Buffer.from(h + '\r\n'), body]);
}

function pct(xs, p) {
    if (!xs.length) return NaN;
    const s = [...xs].sort((x, y) => x - y);
    return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

const nowUs = () => Number(process.hrtime.bigint() / 1000n);

// One response on a raw socket: header block, then the body de-chunked if needed, and an
// SSE event counter that fires onEvent(t) for each "data:" line that is not [DONE].
class Stream {
    constructor(onEvent) {
        this.onEvent = onEvent;
        this.head = '';
        this.inBody = false;
        this.chunked = false;
        this.status = 0;
        this.pending = Buffer.alloc(0); // undecoded chunked bytes
        this.chunkLeft = 0;
        this.line = ''; // current body line
        this.events = 0;
    }
    feed(buf, t) {
        if (!this.inBody) {
            this.head += buf.toString('latin1');
            const i = this.head.indexOf('\r\n\r\n');
            if (i < 0) return;
            const hdr = this.head.slice(0, i);
            this.status = Number(hdr.split(' ')[1]);
            this.chunked = /\r\ntransfer-encoding:\s*chunked/i.test(hdr);
            buf = Buffer.from(this.head.slice(i + 4), 'latin1');
            this.inBody = true;
        }
        if (!this.chunked) return this.text(buf.toString('latin1'), t);
        this.pending = Buffer.concat([this.pending, buf]);
        for (;;) {
            if (this.chunkLeft > 0) {
                const n = Math.min(this.chunkLeft, this.pending.length);
                if (n === 0) return;
                this.text(this.pending.subarray(0, n).toString('latin1'), t);
                this.pending = this.pending.subarray(n);
                this.chunkLeft -= n;
                if (this.chunkLeft === 0) this.chunkLeft = -2; // CRLF after the data
                continue;
            }
            if (this.chunkLeft === -2) {
                if (this.pending.length < 2) return;
                this.pending = this.pending.subarray(2);
                this.chunkLeft = 0;
                continue;
            }
            const j = this.pending.indexOf('\r\n');
            if (j < 0) return;
            const size = parseInt(this.pending.subarray(0, j).toString('latin1'), 16);
            this.pending = this.pending.subarray(j + 2);
            if (!size) return;
            this.chunkLeft = size;
        }
    }
    text(s, t) {
        for (const ch of s) {
            if (ch === '\n') {
                const l = this.line.replace(/\r$/, '');
                if (l.startsWith('data:') && !l.includes('[DONE]')) {
                    this.events++;
                    this.onEvent(t);
                }
                this.line = '';
            } else if (this.line.length < 8) {
                this.line += ch; // only the start of a line matters
            } else if (this.line.length === 8 && !this.line.startsWith('data:')) {
                // not an event line; keep the first bytes only
            } else if (this.line.length < 64) {
                this.line += ch; // enough to see "[DONE]"
            }
        }
    }
}

async function sseMode() {
    const n = Number(a.n || 20), conc = Number(a.conc || 5);
    const ttfe = [], gaps = [], evCounts = [], statuses = {};
    const one = () => new Promise((resolve) => {
        const times = [];
        let t0 = 0;
        const st = new Stream((t) => times.push(t));
        const send = () => {
            s.setNoDelay(true);
            s.write(rawRequest(true), () => { t0 = nowUs(); });
        };
        const s = a.tls
            ? tls.connect({ port, host, ca: fs.readFileSync(a.tls), servername: 'localhost', ALPNProtocols: ['http/1.1'] }, send)
            : net.connect(port, host, send);
        s.on('data', (b) => st.feed(b, nowUs()));
        s.on('error', () => {});
        s.on('close', () => {
            statuses[st.status] = (statuses[st.status] || 0) + 1;
            evCounts.push(st.events);
            if (times.length) ttfe.push(times[0] - t0);
            for (let i = 1; i < times.length; i++) gaps.push((times[i] - times[i - 1]) / 1000);
            resolve();
        });
    });
    let next = 0;
    const worker = async () => { while (next < n) { next++; await one(); } };
    await Promise.all(Array.from({ length: conc }, worker));
    const f = (x) => (Number.isFinite(x) ? x.toFixed(1) : 'nan');
    console.log([
        `n=${n}`, `ttfe_p50_us=${f(pct(ttfe, 50))}`, `ttfe_p99_us=${f(pct(ttfe, 99))}`,
        `gap_p50_ms=${f(pct(gaps, 50))}`, `gap_min_ms=${f(pct(gaps, 0))}`,
        `gap_p1_ms=${f(pct(gaps, 1))}`, `events_min=${Math.min(...evCounts)}`,
        `events_max=${Math.max(...evCounts)}`,
        `status=${Object.entries(statuses).map(([k, v]) => k + ':' + v).join(',')}`,
    ].join(' '));
}

async function holdMode() {
    const n = Number(a.n), batch = Number(a.batch || 200);
    const socks = [];
    let ok = 0, failed = 0, started = 0;
    const why = {};
    const t0 = Date.now();
    await new Promise((resolve) => {
        const launch = () => {
            while (started < n && started - ok - failed < batch) {
                started++;
                let done = false;
                const finish = (good, reason) => {
                    if (done) return;
                    done = true;
                    good ? ok++ : failed++;
                    if (!good) why[reason] = (why[reason] || 0) + 1;
                    if (ok + failed === n) resolve();
                    else launch();
                };
                const st = new Stream(() => finish(true));
                const s = net.connect(port, host, () => s.write(rawRequest(false)));
                s.on('data', (b) => st.feed(b, 0));
                s.on('error', (e) => finish(false, e.code || 'error'));
                s.on('close', () => finish(false, st.status ? `closed-after-${st.status}` : 'closed'));
                socks.push(s);
            }
        };
        launch();
    });
    const reasons = Object.entries(why).map(([k, v]) => `${k}:${v}`).join(',');
    console.log(`READY ok=${ok} failed=${failed} secs=${((Date.now() - t0) / 1000).toFixed(2)}` +
        (reasons ? ` why=${reasons}` : ''));
    const stop = () => { for (const s of socks) s.destroy(); process.exit(0); };
    process.on('SIGTERM', stop);
    setInterval(() => {}, 1 << 30); // hold until killed
}

async function rateMode() {
    const rate = Number(a.rate), dur = Number(a.dur);
    const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 100000 });
    const lat = [];
    let sent = 0, ok = 0, non2xx = 0, errors = 0, outstanding = 0;
    const start = nowUs();
    const total = Math.round(rate * dur);
    const fire = () => {
        sent++;
        outstanding++;
        const t = nowUs();
        const req = http.request({ host, port, path, method: 'POST', agent,
            headers: { 'content-type': 'application/json', 'content-length': body.length, ...headers } },
        (res) => {
            res.on('data', () => {});
            res.on('end', () => {
                outstanding--;
                lat.push(nowUs() - t);
                if (res.statusCode >= 200 && res.statusCode < 300) ok++; else non2xx++;
            });
        });
        req.setTimeout(30000, () => req.destroy(new Error('timeout')));
        req.on('error', () => { outstanding--; errors++; });
        req.end(body);
    };
    await new Promise((resolve) => {
        const tick = setInterval(() => {
            const due = Math.min(total, Math.floor(((nowUs() - start) / 1e6) * rate));
            while (sent < due) fire();
            if (sent >= total) { clearInterval(tick); resolve(); }
        }, 1);
    });
    const sendSecs = (nowUs() - start) / 1e6;
    const deadline = Date.now() + 15000;
    while (outstanding > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const f = (x) => (Number.isFinite(x) ? x.toFixed(0) : 'nan');
    console.log([`sent=${sent}`, `ok=${ok}`, `non2xx=${non2xx}`, `errors=${errors}`,
        `unanswered=${outstanding}`, `offered_rps=${(sent / sendSecs).toFixed(0)}`,
        `p50_us=${f(pct(lat, 50))}`, `p99_us=${f(pct(lat, 99))}`, `max_us=${f(pct(lat, 100))}`,
    ].join(' '));
    process.exit(0);
}

({ sse: sseMode, hold: holdMode, rate: rateMode })[mode]().catch((e) => {
    console.error(`tools.mjs ${mode}: ${e.stack || e}`);
    process.exit(1);
});
