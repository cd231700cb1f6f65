// The two Workers runtime types this Worker names, with the names and members @cloudflare/workers-types
// gives them (install that package and drop this file for the whole runtime). Request, Response, URL and
// timers come from TypeScript's own `webworker` library (tsconfig.json).
interface ExecutionContext {
  waitUntil(promise: Promise<unknown>): void;
  passThroughOnException(): void;
}

interface ExportedHandler<E = unknown> {
  fetch?(request: Request, env: E, ctx: ExecutionContext): Response | Promise<Response>;
}
