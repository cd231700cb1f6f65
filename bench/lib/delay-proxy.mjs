// A delay proxy for `bench/wan.mjs`: sits between the Workers and the HTTP Redis gateway and makes the
// gateway look `rtt` milliseconds away. Each HTTP request waits rtt/2 before it is forwarded and its response
// waits rtt/2 before it is returned (half the round trip each way), so one round trip costs one RTT however
// the time splits. Connections are kept alive on both sides (the Workers' connections to the proxy, the
// proxy's pooled connections to the gateway); the delay is per HTTP request, never per connection.
//
// The proxy runs in its own Node process (forked), so that its timers do not share an event loop with the
// benchmark's clients. It logs every request it forwarded: when it arrived and when its response left
// (`performance.timeOrigin + performance.now()`). `take()` hands them over on the parent's clock: the offset
// between the two processes' clocks (their time origins can differ by a few milliseconds) is measured with
// a few IPC pings each time.
//
//   const proxy = await startDelayProxy({ target: 'http://127.0.0.1:8080' });
//   proxy.url; await proxy.setRtt(20); const { events } = await proxy.take(); await proxy.stop();
import { fork } from 'node:child_process';
import http from 'node:http';

const now = () => performance.timeOrigin + performance.now();
const later = (ms, fn) => (ms > 0 ? setTimeout(fn, ms) : fn());

/** Runs the proxy in this process (the forked child): answers `rtt` and `take` messages from the parent. */
function serve(target) {
  const upstream = new URL(target);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
  let half = 0;
  let events = [];
  const server = http.createServer((req, res) => {
    const arrived = now();
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      later(half, () => {
        const headers = { ...req.headers, host: upstream.host, 'content-length': String(body.length) };
        delete headers.connection;
        const out = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers, agent }, (up) => {
          const parts = [];
          up.on('data', (c) => parts.push(c));
          up.on('end', () => {
            const answer = Buffer.concat(parts);
            later(half, () => {
              // Stamped before the write: were the process preempted after it, a later stamp could
              // fall after the Worker had already answered its client.
              events.push([arrived, now()]);
              const back = { ...up.headers, 'content-length': String(answer.length) };
              delete back.connection;
              delete back['transfer-encoding'];
              res.writeHead(up.statusCode, back);
              res.end(answer);
            });
          });
        });
        out.on('error', (error) => {
          events.push([arrived, now()]);
          res.writeHead(502, { 'content-type': 'text/plain' });
          res.end(`delay proxy: ${error.message}`);
        });
        out.end(body);
      });
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => process.send({ type: 'ready', port: server.address().port }));
  process.on('message', (m) => {
    if (m.type === 'rtt') {
      half = m.ms / 2;
      process.send({ type: 'rtt', ms: m.ms });
    } else if (m.type === 'clock') {
      process.send({ type: 'clock', at: now() });
    } else if (m.type === 'take') {
      process.send({ type: 'take', events });
      events = [];
    }
  });
  process.on('disconnect', () => process.exit(0));
}

/** Forks a proxy in front of `target` with round trip `rtt` ms; resolves once it listens. */
export async function startDelayProxy({ target, rtt = 0 }) {
  const child = fork(new URL(import.meta.url).pathname, ['--serve', target], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiting = new Map();
  child.on('message', (m) => {
    const pending = waiting.get(m.type);
    waiting.delete(m.type);
    pending?.resolve(m);
  });
  child.on('exit', () => {
    for (const pending of waiting.values()) pending.reject(new Error('the delay proxy exited'));
    waiting.clear();
  });
  const ask = (message) =>
    new Promise((resolve, reject) => {
      waiting.set(message.type, { resolve, reject });
      if (message.type !== 'ready') child.send(message);
    });
  const { port } = await ask({ type: 'ready' });
  const proxy = {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid,
    rtt,
    /** Sets the round trip added to every request from now on. */
    async setRtt(ms) {
      await ask({ type: 'rtt', ms });
      proxy.rtt = ms;
    },
    /** The requests forwarded since the last take, as `[arrived, answered]` timestamps (ms, this process's clock). */
    async take() {
      // The proxy's clock minus ours, from the ping with the shortest round trip.
      let best = { rtt: Infinity, offset: 0 };
      for (let k = 0; k < 5; k++) {
        const sent = now();
        const { at } = await ask({ type: 'clock' });
        const back = now();
        if (back - sent < best.rtt) best = { rtt: back - sent, offset: at - (sent + back) / 2 };
      }
      const { events } = await ask({ type: 'take' });
      return { events: events.map(([arrived, answered]) => [arrived - best.offset, answered - best.offset]), clock_offset_ms: best.offset };
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.disconnect();
      await exited;
    },
  };
  await proxy.setRtt(rtt);
  return proxy;
}

if (process.argv[2] === '--serve') serve(process.argv[3]);
