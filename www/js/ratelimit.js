// The rate-limit panel: choose a policy, fire bursts, see each decision, the remaining budget and the
// retry time live on a chart. Routes: /api/ratelimit and /api/ratelimit/{policy}.
import { call, describeFailure, routes } from './api.js';
import { drawDecisions } from './chart.js';
import { $, el, markReady, markUnavailable, trim } from './ui.js';

const panel = () => $('ratelimit');
const MAX_BARS = 40;
let policies = [];
let decisions = [];
let retryUntil = 0;
let remaining = null;
let retryMs = 0;

function policy() {
  return $('ratelimit-policy').value;
}

function path() {
  const id = $('ratelimit-identifier').value.trim();
  return `/api/ratelimit/${encodeURIComponent(policy())}${id ? `?id=${encodeURIComponent(id)}` : ''}`;
}

function describePolicy() {
  const p = policies.find((q) => q.name === policy());
  $('ratelimit-policy-info').textContent = p
    ? `${p.algorithm}: ${p.limit} per ${p.period_ms / 1000} s${p.burst ? `, burst ${p.burst}` : ''}.`
    : '';
}

function showRetry() {
  const left = retryUntil - Date.now();
  $('ratelimit-retry').textContent = left > 0 ? `${(left / 1000).toFixed(1)} s` : remaining === null ? '–' : 'now';
}

/** Records one decision from an answer (200 body or 429 problem) in the log; returns it or null. */
function record(answer) {
  if (answer.missing) {
    markUnavailable(panel(), 'rate-limit');
    return null;
  }
  const decision = answer.body?.decision;
  if (!decision) {
    $('ratelimit-summary').textContent = describeFailure(answer);
    return null;
  }
  decisions.push(decision);
  decisions = decisions.slice(-MAX_BARS);
  const item = el('li', {
    className: decision.allowed ? 'allowed' : 'denied',
    text: `${decision.allowed ? 'allowed' : 'denied'} · remaining ${decision.remaining}${decision.allowed ? '' : ` · retry after ${decision.retry_after_ms} ms`}${decision.reason ? ` · ${decision.reason}` : ''}`,
  });
  $('ratelimit-log').prepend(item);
  trim($('ratelimit-log'), 10);
  return decision;
}

/**
 * Shows the budget left after a set of decisions made together. The requests of a burst run at once, so
 * the order of their answers is not the order the limiter decided them in: the smallest remaining budget
 * is the one left, and any refusal means waiting for the longest retry time among them.
 */
function settle(batch) {
  if (batch.length === 0) return;
  remaining = Math.min(...batch.map((d) => Number(d.remaining) || 0));
  $('ratelimit-remaining').textContent = `${remaining} of ${batch[0].limit}`;
  const denied = batch.filter((d) => !d.allowed);
  retryMs = denied.length === 0 ? 0 : Math.max(...denied.map((d) => Number(d.retry_after_ms) || 0));
  retryUntil = denied.length === 0 ? 0 : Date.now() + retryMs;
  showRetry();
}

/** Clears the decisions shown, which belong to one policy and identifier. */
function forget() {
  decisions = [];
  retryUntil = 0;
  remaining = null;
  redraw();
  showRetry();
  $('ratelimit-remaining').textContent = '–';
}

function redraw() {
  const denied = decisions.filter((d) => !d.allowed).length;
  const summary = decisions.length === 0
    ? 'No decisions yet.'
    : `${decisions.length} decision${decisions.length === 1 ? '' : 's'}, ${decisions.length - denied} allowed, ${denied} denied; remaining ${remaining}.`;
  drawDecisions($('ratelimit-chart'), decisions, summary);
}

async function fire() {
  const size = Math.min(50, Math.max(1, Number($('ratelimit-burst').value) || 1));
  const answers = await Promise.all(Array.from({ length: size }, () => call('POST', path())));
  // The answers of a burst arrive in any order; the limiter decided them from the fullest budget down,
  // so they are recorded (and drawn) in that order: allowed first, by remaining budget, then the refusals.
  const rank = (answer) => {
    const d = answer.body?.decision;
    return d ? (d.allowed ? 1 + Number(d.remaining || 0) : 0) : -1;
  };
  const batch = [...answers].sort((a, b) => rank(b) - rank(a)).map(record).filter(Boolean);
  const allowed = batch.filter((d) => d.allowed).length;
  const denied = batch.length - allowed;
  settle(batch);
  redraw();
  if (panel().dataset.state !== 'unavailable' && allowed + denied > 0) {
    // The summary is a live region: it says the retry time once; the countdown below is not announced.
    const wait = denied > 0 ? `; retry in ${(retryMs / 1000).toFixed(1)} s` : '';
    $('ratelimit-summary').textContent = `Burst of ${size}: ${allowed} allowed, ${denied} denied${wait}.`;
  }
}

async function peek() {
  const answer = await call('GET', path());
  const decision = record(answer);
  if (decision) {
    settle([decision]);
    redraw();
    $('ratelimit-summary').textContent = 'Peeked: nothing was charged.';
  }
}

async function reset() {
  const answer = await call('DELETE', path());
  if (answer.ok) {
    forget();
    $('ratelimit-summary').textContent = 'Reset: the full budget is back.';
  } else record(answer);
}

export async function startRateLimit() {
  $('ratelimit-identifier').value = `visitor-${Math.random().toString(36).slice(2, 8)}`;
  const known = await routes();
  if (known.size > 0 && !known.has('GET /api/ratelimit')) return markUnavailable(panel(), 'rate-limit');
  const answer = await call('GET', '/api/ratelimit');
  if (!answer.ok) {
    if (answer.missing) return markUnavailable(panel(), 'rate-limit');
    $('ratelimit-summary').textContent = describeFailure(answer);
    return;
  }
  policies = Array.isArray(answer.body?.policies) ? answer.body.policies : [];
  $('ratelimit-policy').replaceChildren(...policies.map((p) => el('option', { text: p.name, attrs: { value: p.name } })));
  markReady(panel());
  describePolicy();
  redraw();
  $('ratelimit-policy').addEventListener('change', () => {
    // What was shown belongs to the previous policy's budget.
    describePolicy();
    forget();
    $('ratelimit-summary').textContent = '';
  });
  $('ratelimit-fire').addEventListener('click', fire);
  $('ratelimit-peek').addEventListener('click', peek);
  $('ratelimit-reset').addEventListener('click', reset);
  setInterval(showRetry, 200);
}
