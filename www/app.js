// The demo page: asks the Worker whether Redis is reachable and shows the answer.
const $ = (id) => document.getElementById(id);

async function checkHealth() {
  const status = $('health-status');
  status.dataset.state = 'checking';
  status.textContent = 'Checking…';
  try {
    const response = await fetch('/api/health', { headers: { accept: 'application/json' } });
    const body = await response.json();
    if (response.ok && body.redis?.ok) {
      status.dataset.state = 'ok';
      status.textContent = 'Redis is reachable';
      $('health-latency').textContent = `${body.redis.latency_ms} ms`;
    } else {
      status.dataset.state = 'down';
      status.textContent = `Redis is unavailable: ${body.redis?.error ?? body.detail ?? response.statusText}`;
      $('health-latency').textContent = '–';
    }
  } catch (error) {
    status.dataset.state = 'down';
    status.textContent = `The Worker did not answer: ${error.message}`;
  }
  $('health-checked').textContent = new Date().toLocaleTimeString();
}

$('health-refresh').addEventListener('click', checkHealth);
checkHealth();
setInterval(checkHealth, 10_000);
