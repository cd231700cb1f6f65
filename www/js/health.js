// The health panel: is Redis reachable, and how long does a PING take?
import { call, describeFailure } from './api.js';
import { $ } from './ui.js';

async function checkHealth() {
  const status = $('health-status');
  status.dataset.state = 'checking';
  status.textContent = 'Checking…';
  const answer = await call('GET', '/api/health');
  if (answer.ok && answer.body?.redis?.ok) {
    status.dataset.state = 'ok';
    status.textContent = 'Redis is reachable';
    $('health-latency').textContent = `${answer.body.redis.latency_ms} ms`;
  } else {
    status.dataset.state = 'down';
    status.textContent = answer.error
      ? `The Worker did not answer: ${answer.error}`
      : `Redis is unavailable: ${answer.body?.redis?.error ?? describeFailure(answer)}`;
    $('health-latency').textContent = '–';
  }
  $('health-checked').textContent = new Date().toLocaleTimeString();
}

export function startHealth() {
  $('health-refresh').addEventListener('click', checkHealth);
  checkHealth();
}
