// Misbehaving HTTP services for the wasm client tests, started by the tests themselves in Node.
// Every server is unref'd so that it never keeps the test process alive.
import http from "node:http";

const hits = new Map();

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.unref();
      resolve(server.address().port);
    });
  });
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

// Answers every request with `{"result":"OK"}`, but only after `delayMs`.
export async function startSlowServer(delayMs) {
  const server = http.createServer((req, res) => {
    const timer = setTimeout(() => {
      res.writeHead(200, { "content-type": "application/json", "upstash-sync-token": "slow" });
      res.end('{"result":"OK"}');
    }, delayMs);
    timer.unref();
    res.on("close", () => clearTimeout(timer));
  });
  const port = await listen(server);
  hits.set(port, 0);
  server.on("request", () => hits.set(port, hits.get(port) + 1));
  return port;
}

// Sends the request's headers and body back out to `upstream`, and its answer back to `res` (when the
// client is still there to receive it).
async function forward(req, res, body, upstreamUrl) {
  const headers = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (name !== "host" && name !== "content-length" && name !== "connection") headers[name] = value;
  }
  try {
    const upstream = await fetch(upstreamUrl + req.url, { method: req.method, headers, body });
    const out = {};
    upstream.headers.forEach((value, name) => {
      if (name !== "content-length" && name !== "content-encoding" && name !== "transfer-encoding") out[name] = value;
    });
    const bytes = Buffer.from(await upstream.arrayBuffer());
    if (res.destroyed) return;
    res.writeHead(upstream.status, out);
    res.end(bytes);
  } catch (e) {
    if (res.destroyed) return;
    res.writeHead(502, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: String(e) }));
  }
}

// Holds every request for `delayMs`, then forwards it to `upstreamUrl` even when the client has given
// up meanwhile: a Redis that was slow and then runs what it had been sent.
export async function startLateServer(delayMs, upstreamUrl) {
  let port = 0;
  const server = http.createServer(async (req, res) => {
    hits.set(port, hits.get(port) + 1);
    const body = await readBody(req);
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    await forward(req, res, body, upstreamUrl);
  });
  port = await listen(server);
  hits.set(port, 0);
  return port;
}

// Resets the connection of the first `dropFirstN` requests without answering (a lost response), then
// forwards requests to `upstreamUrl` (path, headers and body kept).
export async function startFlakyServer(dropFirstN, upstreamUrl) {
  let seen = 0;
  let port = 0;
  const server = http.createServer(async (req, res) => {
    seen += 1;
    hits.set(port, seen);
    const body = await readBody(req);
    if (seen <= dropFirstN) {
      req.socket.destroy();
      return;
    }
    await forward(req, res, body, upstreamUrl);
  });
  port = await listen(server);
  hits.set(port, 0);
  return port;
}

// How many requests the server on `port` has received.
export function requestCount(port) {
  return hits.get(port) ?? 0;
}
