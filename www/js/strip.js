// The request strip: every API request the page makes, with its Redis round trips (those the response
// waited for, and those it left to run in the background after it) and server time.
import { onRequest } from './api.js';
import { $, el, roundTrips as plural, trim } from './ui.js';

const MAX_SHOWN = 12;
let requests = 0;
let tripsInAll = 0;
let backgroundInAll = 0;

function describe(entry) {
  const { timing } = entry;
  if (entry.error) return 'no answer';
  const background = timing.backgroundTrips === null ? '' : `, ${timing.backgroundTrips} in background`;
  const trips = `${plural(timing.roundTrips)}${background}`;
  const redis = timing.redisMs === null ? '' : ` · Redis ${timing.redisMs} ms`;
  const total = timing.totalMs === null ? '' : ` · server ${timing.totalMs} ms`;
  return `${trips}${redis}${total} · page ${entry.clientMs} ms`;
}

export function startStrip() {
  onRequest((entry) => {
    requests += 1;
    tripsInAll += entry.timing.roundTrips ?? 0;
    backgroundInAll += entry.timing.backgroundTrips ?? 0;
    const item = el('li', { className: 'strip-item' });
    item.dataset.roundTrips = String(entry.timing.roundTrips ?? '');
    item.dataset.backgroundTrips = String(entry.timing.backgroundTrips ?? '');
    item.dataset.status = String(entry.status);
    const head = el('span', { className: 'strip-request' });
    head.append(el('span', { className: 'mono', text: `${entry.method} ${entry.path}` }), ' ', el('span', {
      className: `code code-${Math.floor(entry.status / 100)}xx`,
      text: entry.status ? String(entry.status) : 'error',
    }));
    item.append(head, el('span', { className: 'strip-cost', text: describe(entry) }));
    $('strip-list').prepend(item);
    trim($('strip-list'), MAX_SHOWN);
    $('strip-summary').textContent = `${requests} request${requests === 1 ? '' : 's'}, ${plural(tripsInAll).replace('round', 'Redis round')} in all, ${backgroundInAll} more in the background.`;
  });
}
