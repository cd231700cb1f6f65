// Small helpers shared by the panels.

export const $ = (id) => document.getElementById(id);

/** Creates an element with text and attributes. */
export function el(tag, { text, className, attrs } = {}) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  for (const [name, value] of Object.entries(attrs ?? {})) node.setAttribute(name, value);
  return node;
}

/** Marks a panel unavailable (its routes are not deployed) and says so, instead of breaking. */
export function markUnavailable(panel, what) {
  panel.dataset.state = 'unavailable';
  const note = panel.querySelector('.unavailable-note');
  note.textContent = `Unavailable: this Worker has no ${what} routes yet.`;
  note.hidden = false;
  for (const control of panel.querySelectorAll('.available button, .available input, .available select')) control.disabled = true;
}

/** Marks a panel ready. */
export function markReady(panel) {
  panel.dataset.state = 'ready';
  panel.querySelector('.unavailable-note').hidden = true;
}

/** `12:03:04` for a Unix-millisecond time. */
export function clock(ms) {
  return typeof ms === 'number' ? new Date(ms).toLocaleTimeString() : '–';
}

/** `in 1 m 05 s` / `expired` for a Unix-millisecond deadline. */
export function countdown(ms, now = Date.now()) {
  if (typeof ms !== 'number') return '–';
  const left = Math.round((ms - now) / 1000);
  if (left <= 0) return 'expired';
  const hours = Math.floor(left / 3600);
  const minutes = Math.floor((left % 3600) / 60);
  const seconds = left % 60;
  if (hours > 0) return `in ${hours} h ${String(minutes).padStart(2, '0')} m`;
  return minutes > 0 ? `in ${minutes} m ${String(seconds).padStart(2, '0')} s` : `in ${seconds} s`;
}

/** Keeps at most `max` children in a list, dropping the oldest (last). */
export function trim(list, max) {
  while (list.children.length > max) list.lastElementChild.remove();
}

/** `1 round trip`, `2 round trips`, `? round trips`. */
export function roundTrips(n) {
  return n === null || n === undefined ? '? round trips' : `${n} round trip${n === 1 ? '' : 's'}`;
}
