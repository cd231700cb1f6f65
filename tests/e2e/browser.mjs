// A tiny cookie-keeping browser for the session routes, shared by the e2e suites.
import { roundTrips, workerUrl } from './env.mjs';

/** A tiny browser: keeps the session cookie it is given and sends it back (to the Worker at `base`). */
export class Browser {
  constructor(base = workerUrl) {
    this.base = base;
    this.cookie = null;
  }

  async call(method, path, { body, headers = {}, withOrigin = method !== 'GET' } = {}) {
    const sent = { ...headers };
    if (withOrigin) sent.origin = new URL(this.base).origin;
    if (this.cookie) sent.cookie = this.cookie;
    if (body !== undefined) sent['content-type'] = 'application/json';
    const response = await fetch(`${this.base}${path}`, {
      method,
      headers: sent,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const setCookies = response.headers.getSetCookie();
    for (const line of setCookies) {
      const [pair] = line.split(';');
      const value = pair.slice(pair.indexOf('=') + 1);
      this.cookie = value ? pair : null;
    }
    const text = await response.text();
    return {
      status: response.status,
      headers: response.headers,
      setCookies,
      body: text ? JSON.parse(text) : null,
      roundTrips: roundTrips(response),
    };
  }

  signIn(user) {
    return this.call('POST', '/api/session', { body: { user } });
  }
}
