// The session panel: sign in by name, see the session and its expiry, keep a note in it, list and
// revoke sessions, sign out here or everywhere. Routes: /api/session and /api/sessions.
import { call, describeFailure, routes } from './api.js';
import { $, clock, countdown, el, markReady, markUnavailable } from './ui.js';

const panel = () => $('session');
let current = null;

function say(text, state = 'info') {
  const message = $('session-message');
  message.textContent = text;
  message.dataset.state = state;
}

function showExpiry() {
  if (!current) return;
  $('session-idle').textContent = `${clock(current.idle_expires_at)} (${countdown(current.idle_expires_at)})`;
  $('session-absolute').textContent = `${clock(current.absolute_expires_at)} (${countdown(current.absolute_expires_at)})`;
}

function show(session) {
  current = session;
  $('session-current').hidden = !session;
  panel().dataset.signedIn = session ? 'yes' : 'no';
  if (!session) return;
  $('session-user-shown').textContent = session.user;
  $('session-id').textContent = session.id;
  $('session-created').textContent = clock(session.created);
  $('session-version').textContent = String(session.version ?? '–');
  const note = session.data && typeof session.data === 'object' ? session.data.note : undefined;
  $('session-note').value = typeof note === 'string' ? note : '';
  showExpiry();
}

/** Handles a failed call; returns true when the panel turned out to be unavailable. */
function failed(answer) {
  if (answer.missing) {
    markUnavailable(panel(), 'session');
    return true;
  }
  say(describeFailure(answer), 'error');
  return false;
}

async function revoke(summary) {
  const answer = await call('DELETE', `/api/sessions/${encodeURIComponent(summary.id)}`);
  if (!answer.ok) return failed(answer);
  if (summary.current) {
    show(null);
    say('Signed out: this session was revoked.', 'ok');
    return;
  }
  await refresh();
  if (current) say(`Session ${summary.id} revoked.`, 'ok');
}

async function listSessions() {
  const answer = await call('GET', '/api/sessions');
  const body = $('session-list');
  body.replaceChildren();
  if (!answer.ok) {
    if (answer.status !== 401) failed(answer);
    return;
  }
  for (const s of answer.body?.sessions ?? []) {
    const row = el('tr');
    const id = el('td', { className: 'mono', text: s.id });
    if (s.current) id.append(' ', el('span', { className: 'badge', text: 'this one' }));
    const button = el('button', { text: 'Revoke', attrs: { type: 'button', 'aria-label': `Revoke session ${s.id}${s.current ? ' (this one)' : ''}` } });
    button.addEventListener('click', () => revoke(s));
    const action = el('td');
    action.append(button);
    row.append(id, el('td', { text: clock(s.created) }), el('td', { text: clock(s.last_seen) }), action);
    body.append(row);
  }
  const count = body.children.length;
  $('session-count').textContent = `${count} live session${count === 1 ? '' : 's'}.`;
}

/** Reloads the session and the list; a session that ended elsewhere (revoked, expired) shows as signed out. */
async function refresh() {
  const answer = await call('GET', '/api/session');
  if (answer.ok) {
    show(answer.body?.session ?? null);
    await listSessions();
  } else if (answer.status === 401) {
    const ended = current !== null;
    show(null);
    say(ended ? 'Signed out: this session ended (revoked or expired).' : 'Signed out.');
  } else if (!failed(answer)) {
    show(null);
  }
}

const ready = () => panel().dataset.state === 'ready';

async function signIn(event) {
  event.preventDefault();
  if (!ready()) return;
  const user = $('session-user').value.trim();
  if (!user) return say('Enter a name to sign in.', 'error');
  const answer = await call('POST', '/api/session', { json: { user } });
  if (!answer.ok) return failed(answer);
  show(answer.body?.session ?? null);
  say(`Signed in as ${user}.`, 'ok');
  await listSessions();
}

async function saveNote(event) {
  event.preventDefault();
  if (!ready() || !current) return;
  const answer = await call('PATCH', '/api/session', { json: { data: { ...(current.data ?? {}), note: $('session-note').value }, version: current.version } });
  if (answer.ok) {
    show(answer.body?.session ?? current);
    say('Note saved.', 'ok');
  } else if (answer.status === 409) {
    say('Someone changed this session in the meantime: reloaded it, try again.', 'error');
    await refresh();
  } else failed(answer);
}

async function signOut(everywhere) {
  const answer = await call('DELETE', everywhere ? '/api/sessions' : '/api/session');
  if (!answer.ok) return failed(answer);
  show(null);
  $('session-list').replaceChildren();
  say(everywhere ? 'Signed out everywhere.' : 'Signed out.', 'ok');
}

export async function startSession() {
  // Listeners first: a form submitted before the panel is ready must not fall back to a page load.
  $('session-signin').addEventListener('submit', signIn);
  $('session-note-form').addEventListener('submit', saveNote);
  $('session-refresh').addEventListener('click', () => ready() && refresh());
  $('session-signout').addEventListener('click', () => ready() && signOut(false));
  $('session-signout-all').addEventListener('click', () => ready() && signOut(true));
  const known = await routes();
  if (known.size > 0 && !known.has('GET /api/session')) return markUnavailable(panel(), 'session');
  // Ready once the page knows whether the visitor is signed in, so a late answer cannot undo a sign-in.
  await refresh();
  if (panel().dataset.state === 'unavailable') return;
  markReady(panel());
  setInterval(showExpiry, 1000);
}
