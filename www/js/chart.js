// A small SVG chart of rate-limit decisions: one bar per decision (height = remaining budget, colour =
// allowed or denied) and a dashed line for the retry time. No library.

const NS = 'http://www.w3.org/2000/svg';
const WIDTH = 320;
const HEIGHT = 120;
const PAD = 4;

function node(tag, attrs) {
  const n = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs)) n.setAttribute(name, String(value));
  return n;
}

/**
 * Draws `decisions` ({ allowed, remaining, limit, retry_after_ms }) into `svg`, keeping its <title>,
 * which is set to `summary` for screen readers.
 */
export function drawDecisions(svg, decisions, summary) {
  const title = svg.querySelector('title');
  title.textContent = summary;
  svg.replaceChildren(title);
  svg.append(node('line', { x1: 0, y1: HEIGHT - PAD, x2: WIDTH, y2: HEIGHT - PAD, class: 'axis' }));
  if (decisions.length === 0) return;
  const limit = Math.max(1, ...decisions.map((d) => Number(d.limit) || 0));
  const maxRetry = Math.max(1, ...decisions.map((d) => Number(d.retry_after_ms) || 0));
  const step = WIDTH / decisions.length;
  const barWidth = Math.max(1, step * 0.7);
  const usable = HEIGHT - 2 * PAD;
  const points = [];
  decisions.forEach((d, i) => {
    const x = i * step + (step - barWidth) / 2;
    // A denied decision with no budget still gets a sliver, so it is visible.
    const h = Math.max(3, (Math.max(0, Number(d.remaining) || 0) / limit) * usable);
    svg.append(node('rect', { x, y: HEIGHT - PAD - h, width: barWidth, height: h, class: d.allowed ? 'bar-allowed' : 'bar-denied' }));
    const retry = Number(d.retry_after_ms) || 0;
    points.push(`${x + barWidth / 2},${HEIGHT - PAD - (retry / maxRetry) * usable}`);
  });
  if (decisions.some((d) => Number(d.retry_after_ms) > 0)) {
    svg.append(node('polyline', { points: points.join(' '), class: 'retry-line', fill: 'none' }));
  }
}
