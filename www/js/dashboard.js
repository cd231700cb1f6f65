// The dashboard panel: GET /api/dashboard?item=N, the combined route. It shows who is signed in, the
// budget the route spent from, the item and its cache status, and the Redis round trips it cost.
import { call, describeFailure, routes } from './api.js';
import { $, markReady, markUnavailable, roundTrips } from './ui.js';

const panel = () => $('dashboard');

function say(text, state = 'info') {
  $('dashboard-message').textContent = text;
  $('dashboard-message').dataset.state = state;
}

async function load(event) {
  event.preventDefault();
  if (panel().dataset.state !== 'ready') return;
  const item = $('dashboard-item').value.trim();
  if (!item) return say('Enter an item id.', 'error');
  const answer = await call('GET', `/api/dashboard?item=${encodeURIComponent(item)}`);
  if (answer.missing) return markUnavailable(panel(), 'dashboard');
  if (!answer.ok) return say(describeFailure(answer), 'error');
  const { session, ratelimit, item: found } = answer.body;
  $('dashboard-user').textContent = session ? session.user : 'nobody (signed out)';
  $('dashboard-budget').textContent = ratelimit ? `${ratelimit.remaining} of ${ratelimit.limit} (${ratelimit.policy})` : 'not limited';
  const shown = typeof found.value?.name === 'string' ? found.value.name : JSON.stringify(found.value);
  $('dashboard-value').textContent = `${shown} (${found.status})`;
  const background = answer.timing.backgroundTrips === null ? '' : ` (${answer.timing.backgroundTrips} more in the background)`;
  $('dashboard-round-trips').textContent = `${roundTrips(answer.timing.roundTrips)}${background}`;
  say(`Loaded item ${found.id} (${found.status}) in ${roundTrips(answer.timing.roundTrips)}.`, 'ok');
}

export async function startDashboard() {
  $('dashboard-form').addEventListener('submit', load);
  const known = await routes();
  if (known.size > 0 && !known.has('GET /api/dashboard')) return markUnavailable(panel(), 'dashboard');
  markReady(panel());
}
