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
  $('ratelimit-retry').textContent = left > 0 ? `${(left / 1000).toFixed(1)} s` : 'now';
}

/** Records one decision from an answer (200 body or 429 problem); returns it or null. */
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
  $('ratelimit-remaining').textContent = `${decision.remaining} of ${decision.limit}`;
  retryUntil = decision.allowed ? 0 : Date.now() + Number(decision.retry_after_ms || 0);
  showRetry();
  const item = el('li', {
    className: decision.allowed ? 'allowed' : 'denied',
    text: `${decision.allowed ? 'allowed' : 'denied'} · remaining ${decision.remaining}${decision.allowed ? '' : ` · retry after ${decision.retry_after_ms} ms`}${decision.reason ? ` · ${decision.reason}` : ''}`,
  });
  $('ratelimit-log').prepend(item);
  trim($('ratelimit-log'), 10);
  return decision;
}

function redraw() {
  const denied = decisions.filter((d) => !d.allowed).length;
  const last = decisions.at(-1);
  const summary = decisions.length === 0
    ? 'No decisions yet.'
    : `${decisions.length} decisions, ${decisions.length - denied} allowed, ${denied} denied; remaining ${last.remaining}.`;
  drawDecisions($('ratelimit-chart'), decisions, summary);
}

async function fire() {
  const size = Math.min(50, Math.max(1, Number($('ratelimit-burst').value) || 1));
  const answers = await Promise.all(Array.from({ length: size }, () => call('POST', path())));
  let allowed = 0;
  let denied = 0;
  for (const answer of answers) {
    const decision = record(answer);
    if (!decision) continue;
    if (decision.allowed) allowed += 1;
    else denied += 1;
  }
  redraw();
  if (panel().dataset.state !== 'unavailable' && allowed + denied > 0) {
    $('ratelimit-summary').textContent = `Burst of ${size}: ${allowed} allowed, ${denied} denied.`;
  }
}

async function peek() {
  const answer = await call('GET', path());
  if (record(answer)) {
    redraw();
    $('ratelimit-summary').textContent = 'Peeked: nothing was charged.';
  }
}

async function reset() {
  const answer = await call('DELETE', path());
  if (answer.ok) {
    decisions = [];
    retryUntil = 0;
    redraw();
    showRetry();
    $('ratelimit-remaining').textContent = '–';
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
    describePolicy();
    decisions = [];
    redraw();
  });
  $('ratelimit-fire').addEventListener('click', fire);
  $('ratelimit-peek').addEventListener('click', peek);
  $('ratelimit-reset').addEventListener('click', reset);
  setInterval(showRetry, 200);
}
