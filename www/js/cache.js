// The cache panel: look ids up through the slow origin, see hit / miss / stale, the latency and the
// origin-call count; invalidate an id or its group. Routes: /api/lookup/{id}, /api/lookup/tags/{tag}.
import { call, describeFailure, routes } from './api.js';
import { $, el, markReady, markUnavailable, roundTrips, trim } from './ui.js';

const panel = () => $('cache');

function say(text, state = 'info') {
  $('cache-message').textContent = text;
  $('cache-message').dataset.state = state;
}

function currentId() {
  return $('cache-id').value.trim();
}

function missing(answer) {
  if (!answer.missing) return false;
  markUnavailable(panel(), 'cached-lookup');
  return true;
}

/**
 * The cache status of a lookup answer. In a problem body `status` is the HTTP status (RFC 9457), so the
 * cache status may come under another name there.
 */
function cacheStatus(result) {
  if (!result) return null;
  for (const value of [result.status, result.cache_status, result.cache?.status, result.lookup?.status]) {
    if (typeof value === 'string') return value;
  }
  return null;
}

const ready = () => panel().dataset.state === 'ready';

async function lookUp(event) {
  event.preventDefault();
  if (!ready()) return;
  const id = currentId();
  if (!id) return say('Enter an id.', 'error');
  const answer = await call('GET', `/api/lookup/${encodeURIComponent(id)}`);
  if (missing(answer)) return;
  // A 200, or a 404 problem for an id that does not exist: both carry the status fields.
  const result = answer.ok ? answer.body : answer.problem;
  const status = cacheStatus(result);
  if (!status) {
    say(describeFailure(answer), 'error');
    return;
  }
  const badge = $('cache-status');
  badge.textContent = status;
  badge.dataset.status = status;
  $('cache-value').textContent = answer.ok ? JSON.stringify(result.value) : 'not found';
  $('cache-latency').textContent = `${result.took_ms} ms (page ${answer.clientMs} ms)`;
  // The count is the isolate's, over every visitor; whether this lookup added to it is its own field.
  const own = typeof result.origin_called === 'boolean' ? ` (this lookup ${result.origin_called ? 'called the origin' : 'did not'})` : '';
  $('cache-origin-calls').textContent = `${result.origin_calls} in all${own}`;
  // This isolate's ratio; the whole deployment's is redge_cache_hit_ratio in /api/metrics.
  const hits = result.cache_hits;
  if (hits && hits.lookups > 0) {
    const percent = Math.round((100 * hits.answered_from_cache) / hits.lookups);
    $('cache-hit-ratio').textContent = `${percent}% of ${hits.lookups} lookups (this isolate)`;
  }
  say(answer.ok ? `Id ${id}: ${status}.` : `Id ${id} does not exist (${status}).`, answer.ok ? 'ok' : 'info');
  $('cache-log').prepend(el('li', { text: `${id} · ${status} · ${result.took_ms} ms · ${roundTrips(answer.timing.roundTrips)}` }));
  trim($('cache-log'), 10);
}

async function invalidate(group) {
  if (!ready()) return;
  const id = currentId();
  const number = Number(id);
  if (!id || (group && !Number.isInteger(number))) return say('Enter a numeric id.', 'error');
  const target = group ? `/api/lookup/tags/group-${number % 10}` : `/api/lookup/${encodeURIComponent(id)}`;
  const answer = await call('DELETE', target);
  if (missing(answer)) return;
  if (answer.ok) say(group ? `Group group-${number % 10} invalidated.` : `Id ${id} invalidated.`, 'ok');
  else say(describeFailure(answer), 'error');
}

export async function startCache() {
  // Listeners first: a lookup submitted before the panel is ready must not fall back to a page load.
  $('cache-form').addEventListener('submit', lookUp);
  $('cache-invalidate').addEventListener('click', () => invalidate(false));
  $('cache-invalidate-group').addEventListener('click', () => invalidate(true));
  const known = await routes();
  if (known.size > 0 && !known.has('GET /api/lookup/{id}')) return markUnavailable(panel(), 'cached-lookup');
  markReady(panel());
}
