// The demo page in headless Chromium: what a person sees.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { eventually, redis, workerUrl } from './env.mjs';
import { startExtraWorker } from './workers.mjs';

const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
let browser;

before(async () => {
  browser = await chromium.launch({
    executablePath,
    args: ['--no-sandbox', '--headless=new', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});

after(async () => {
  await browser?.close();
});

/**
 * Opens the page and collects its console errors and uncaught exceptions. Chromium also logs every HTTP
 * error response as a console error ("Failed to load resource: ... status of 429"); a test that expects
 * some (a 401 while signed out, a 429 in a burst) lists those statuses in `expectedStatuses`, and only
 * those network lines are ignored: script errors always count. The page asks "who am I" on load, which a
 * signed-out visitor answers with 401, so 401 is always expected.
 */
async function openPage({ viewport, expectedStatuses = [], url = workerUrl } = {}) {
  expectedStatuses = [401, ...expectedStatuses];
  const page = await browser.newPage(viewport ? { viewport } : {});
  const problems = [];
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    const network = /^Failed to load resource: the server responded with a status of (\d+)/.exec(message.text());
    if (network && expectedStatuses.includes(Number(network[1]))) return;
    problems.push(message.text());
  });
  page.on('pageerror', (error) => problems.push(error.message));
  // The tests wait for the states they need, so the page counts as open once its document and modules
  // are in. In one run of many, `wrangler dev` left a navigation unanswered for 30 s: try once more.
  try {
    await page.goto(`${url}/`, { waitUntil: 'domcontentloaded', timeout: 15_000 });
  } catch (error) {
    if (error.name !== 'TimeoutError') throw error;
    await page.goto(`${url}/`, { waitUntil: 'domcontentloaded', timeout: 15_000 });
  }
  return { page, problems };
}

test('the page shows that Redis is reachable, with no console errors', async () => {
  const { page, problems } = await openPage();
  const status = page.locator('#health-status');
  await status.filter({ hasText: 'Redis is reachable' }).waitFor({ timeout: 10_000 });
  assert.equal(await status.getAttribute('data-state'), 'ok');
  assert.match(await page.locator('#health-latency').textContent(), /^\d+ ms$/);
  mkdirSync('test-results', { recursive: true });
  await page.screenshot({ path: 'test-results/health.png', fullPage: true });
  assert.deepEqual(problems, []);
  await page.close();
});

test('the page tells the visitor when Redis is down, and recovers on "Check again"', async () => {
  const { page } = await openPage();
  const status = page.locator('#health-status');
  await status.filter({ hasText: 'Redis is reachable' }).waitFor({ timeout: 10_000 });
  await redis('stop');
  try {
    await page.getByRole('button', { name: 'Check again' }).click();
    await status.filter({ hasText: 'Redis is unavailable' }).waitFor({ timeout: 5_000 });
    assert.equal(await status.getAttribute('data-state'), 'down');
  } finally {
    await redis('start');
  }
  // Keyboard use: focus the button and press Enter until the first checks after the restart succeed.
  await page.getByRole('button', { name: 'Check again' }).focus();
  let state = 'down';
  for (let attempt = 0; attempt < 20 && state !== 'ok'; attempt += 1) {
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.getElementById('health-status').dataset.state !== 'checking');
    state = await status.getAttribute('data-state');
    if (state !== 'ok') await page.waitForTimeout(250);
  }
  assert.equal(state, 'ok');
  await page.close();
});

/** The routes the Worker has, as "METHOD /pattern" strings. */
async function deployedRoutes() {
  const { routes } = await (await fetch(`${workerUrl}/api`)).json();
  return new Set(routes.map((r) => `${r.method} ${r.path}`));
}

const panels = [
  { id: 'session', route: 'GET /api/session', heading: 'Session' },
  { id: 'ratelimit', route: 'GET /api/ratelimit', heading: 'Rate limiting' },
  { id: 'cache', route: 'GET /api/lookup/{id}', heading: 'Cached lookups' },
  { id: 'dashboard', route: 'GET /api/dashboard', heading: 'Dashboard' },
];

test('every panel renders; a panel whose routes are not deployed says so instead of breaking', async () => {
  const routes = await deployedRoutes();
  const { page, problems } = await openPage();
  mkdirSync('test-results', { recursive: true });
  for (const panel of panels) {
    const section = page.locator(`#${panel.id}`);
    assert.equal(await page.getByRole('heading', { level: 2, name: panel.heading }).count(), 1);
    await page.waitForFunction((id) => document.getElementById(id).dataset.state !== 'loading', panel.id);
    const state = await section.getAttribute('data-state');
    if (routes.has(panel.route)) {
      assert.equal(state, 'ready', panel.id);
    } else {
      assert.equal(state, 'unavailable', panel.id);
      const note = section.locator('.unavailable-note');
      assert.equal(await note.isVisible(), true);
      assert.match(await note.textContent(), /^Unavailable: /);
      // Its controls are disabled, so nothing can be clicked into a 404.
      for (const button of await section.locator('.available button').all()) assert.equal(await button.isDisabled(), true);
    }
    await section.screenshot({ path: `test-results/panel-${panel.id}.png` });
  }
  await page.locator('#health').screenshot({ path: 'test-results/panel-health.png' });
  assert.deepEqual(problems, []);
  await page.close();
});

test('the strip shows each request with its Redis round trips (critical and background) and server time', async () => {
  const { page, problems } = await openPage();
  const health = page.locator('.strip-item', { hasText: 'GET /api/health' }).first();
  await health.waitFor({ timeout: 10_000 });
  assert.equal(await health.getAttribute('data-round-trips'), '1');
  assert.match(await health.textContent(), /200.*1 round trip, [01] in background · Redis \d+ ms · server \d+ ms · page \d+ ms/);
  assert.match(await health.getAttribute('data-background-trips'), /^[01]$/);
  // "Check again" adds a new health entry.
  const healthItems = page.locator('.strip-item', { hasText: 'GET /api/health' });
  const before = await healthItems.count();
  await page.getByRole('button', { name: 'Check again' }).click();
  await page.waitForFunction(
    (n) => [...document.querySelectorAll('.strip-item')].filter((e) => e.textContent.includes('GET /api/health')).length > n,
    before,
  );
  assert.match(await page.locator('#strip-summary').textContent(), /^\d+ requests, \d+ Redis round trips? in all, \d+ more in the background\.$/);
  await page.locator('#strip').screenshot({ path: 'test-results/panel-strip.png' });
  assert.deepEqual(problems, []);
  await page.close();
});

test('the page is usable at phone width: no horizontal scrolling, every control labelled', async () => {
  const { page, problems } = await openPage({ viewport: { width: 360, height: 740 } });
  await page.locator('#health-status').filter({ hasText: 'Redis is reachable' }).waitFor({ timeout: 10_000 });
  for (const panel of panels) {
    await page.waitForFunction((id) => document.getElementById(id).dataset.state !== 'loading', panel.id);
  }
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow} px wider than the screen`);
  const unlabelled = await page.evaluate(() => [...document.querySelectorAll('input, select, textarea')]
    .filter((c) => c.labels.length === 0 && !c.getAttribute('aria-label'))
    .map((c) => c.id || c.outerHTML));
  assert.deepEqual(unlabelled, []);
  const unnamed = await page.evaluate(() => [...document.querySelectorAll('button')]
    .filter((b) => !b.textContent.trim() && !b.getAttribute('aria-label')).map((b) => b.outerHTML));
  assert.deepEqual(unnamed, []);
  // The skip link is the first stop of the keyboard.
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Skip to the panels');
  await page.screenshot({ path: 'test-results/phone.png', fullPage: true });
  assert.deepEqual(problems, []);
  await page.close();
});

/** WCAG contrast ratios of the page's visible text, in the browser (opacity and disabled controls aside). */
function lowContrastText() {
  const parse = (color) => (color.match(/[\d.]+/g) ?? []).map(Number);
  const luminance = ([r, g, b]) => {
    const channel = (v) => {
      const c = v / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    };
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  };
  const background = (element) => {
    for (let node = element; node; node = node.parentElement) {
      const rgba = parse(getComputedStyle(node).backgroundColor);
      if (rgba.length === 3 || (rgba.length === 4 && rgba[3] > 0)) return rgba.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const failures = [];
  let checked = 0;
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let text = walker.nextNode(); text; text = walker.nextNode()) {
    const element = text.parentElement;
    if (!text.textContent.trim() || !element.checkVisibility()) continue;
    // Inactive controls (disabled, or inside a panel shown as unavailable) are exempt from the minimum.
    if (element.closest('button:disabled, [data-state="unavailable"] .available, .skip')) continue;
    checked += 1;
    const fg = luminance(parse(getComputedStyle(element).color));
    const bg = luminance(background(element));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    if (ratio < 4.5) failures.push(`${text.textContent.trim().slice(0, 40)}: ${ratio.toFixed(2)}`);
  }
  return { checked, failures };
}

test('text has at least 4.5:1 contrast in the light and the dark theme', async () => {
  for (const colorScheme of ['light', 'dark']) {
    const page = await browser.newPage({ colorScheme });
    await page.goto(`${workerUrl}/`);
    await page.locator('#health-status').filter({ hasText: 'Redis is reachable' }).waitFor({ timeout: 10_000 });
    await page.locator('.strip-item').first().waitFor();
    const { checked, failures } = await page.evaluate(lowContrastText);
    assert.ok(checked > 20, `only ${checked} texts checked`);
    assert.deepEqual(failures, [], colorScheme);
    await page.screenshot({ path: `test-results/page-${colorScheme}.png`, fullPage: true });
    await page.close();
  }
});

/** Waits until the panel with this id has finished loading and is ready to use. */
async function panelReady(page, id) {
  await page.locator(`#${id}[data-state="ready"]`).waitFor({ timeout: 10_000 });
}

/** Presses Tab until the focused element has this accessible name (a button's text or aria-label). */
async function tabTo(page, name) {
  for (let presses = 0; presses < 100; presses += 1) {
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => {
      const e = document.activeElement;
      return e ? (e.getAttribute('aria-label') ?? e.textContent).trim() : '';
    });
    if (focused === name) return;
  }
  throw new Error(`Tab never reached "${name}"`);
}

test('keyboard only: Tab reaches every control in page order with a visible focus ring; Enter and Space activate', async () => {
  const { page, problems } = await openPage();
  for (const panel of panels) await panelReady(page, panel.id);
  await page.locator('#health-status[data-state="ok"]').waitFor({ timeout: 10_000 });

  // Every control a visitor can see, in document order, against the stops that Tab actually makes.
  const controls = await page.evaluate(() => [...document.querySelectorAll('a[href], button, input, select')]
    .filter((e) => !e.disabled && (e.checkVisibility() || e.classList.contains('skip')))
    .map((e) => e.id || e.textContent.trim()));
  assert.ok(controls.length >= 15, `only ${controls.length} controls`);
  const stops = [];
  for (let presses = 0; presses < controls.length + 10; presses += 1) {
    await page.keyboard.press('Tab');
    const stop = await page.evaluate(() => {
      const e = document.activeElement;
      if (!e || e === document.body) return null;
      const style = getComputedStyle(e);
      return {
        name: e.id || e.textContent.trim(),
        // Chromium also stops on a scrolled list with nothing focusable inside, which is fine.
        control: e.matches('a[href], button, input, select'),
        ring: e.matches(':focus-visible') && style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2,
      };
    });
    if (stop === null || stop.name === stops[0]?.name) break;
    stops.push(stop);
  }
  assert.deepEqual(stops.filter((s) => s.control).map((s) => s.name), controls, 'Tab visits every control once, in page order');
  assert.deepEqual(stops.filter((s) => !s.ring).map((s) => s.name), [], 'a focused control without a visible ring');

  // Space on a button reached with Tab: "Check again" asks for health once more.
  const healthChecks = page.locator('.strip-item', { hasText: 'GET /api/health' });
  const checks = await healthChecks.count();
  await tabTo(page, 'Check again');
  await page.keyboard.press('Space');
  await page.waitForFunction((n) => [...document.querySelectorAll('.strip-item')]
    .filter((e) => e.textContent.includes('GET /api/health')).length > n, checks);

  // Enter on a focused button, reached with Tab: "Peek" shows a decision without charging one.
  await tabTo(page, 'Peek');
  await page.keyboard.press('Enter');
  await page.locator('#ratelimit-summary', { hasText: 'Peeked: nothing was charged.' }).waitFor();
  assert.match(await page.locator('#ratelimit-remaining').textContent(), /^\d+ of \d+$/);
  assert.deepEqual(problems, []);
  await page.close();
});

test('a visitor\'s journey: sign in, manage sessions, hit the rate limit, look a value up twice, sign out everywhere', async () => {
  mkdirSync('test-results', { recursive: true });
  const user = `journey-${randomUUID().slice(0, 8)}`;
  // The burst is refused (429) and signing out ends in "who am I" answers of 401.
  const { page, problems } = await openPage({ expectedStatuses: [429] });
  const message = page.locator('#session-message');
  await panelReady(page, 'session');
  await message.filter({ hasText: /^Signed out\.$/ }).waitFor();
  assert.equal(await page.locator('#session-current').isVisible(), false);

  // Sign in with the keyboard: type the name into its labelled field and press Enter.
  const name = page.getByLabel('Name', { exact: true });
  await name.fill(user);
  await name.press('Enter');
  await message.filter({ hasText: `Signed in as ${user}.` }).waitFor();
  const currentSession = page.locator('#session-current');
  assert.equal(await currentSession.isVisible(), true);
  assert.equal(await page.locator('#session-user-shown').textContent(), user);
  // What the page shows is what the Worker has (the API is only read here, to check).
  const me = await page.request.get(`${workerUrl}/api/session`);
  assert.equal(me.status(), 200);
  const { session } = await me.json();
  const shownTime = (ms) => page.evaluate((t) => new Date(t).toLocaleTimeString(), ms);
  assert.equal(await page.locator('#session-id').textContent(), session.id);
  assert.equal(await page.locator('#session-created').textContent(), await shownTime(session.created));
  const absolute = /^(.+) \(in (\d+) h \d\d m\)$/.exec(await page.locator('#session-absolute').textContent());
  assert.ok(absolute, await page.locator('#session-absolute').textContent());
  assert.equal(absolute[1], await shownTime(session.absolute_expires_at));
  assert.ok(Number(absolute[2]) <= 12, 'the default absolute lifetime is 12 hours');
  // The idle expiry is a live countdown (default idle timeout: 30 minutes).
  const idle = page.locator('#session-idle');
  const idleText = await idle.textContent();
  const idleLeft = /^\S.* \(in (\d+) m (\d\d) s\)$/.exec(idleText);
  assert.ok(idleLeft, `idle expiry: ${idleText}`);
  assert.ok(Number(idleLeft[1]) * 60 + Number(idleLeft[2]) <= 1800, idleText);
  await page.waitForFunction((before) => document.getElementById('session-idle').textContent !== before, idleText);
  assert.match(await idle.textContent(), /^\S.* \(in \d+ m \d\d s\)$/);
  await page.locator('#session').screenshot({ path: 'test-results/journey-1-session.png' });

  // A second device signs in as the same user: after "Refresh list" both sessions are listed.
  const other = await openPage();
  await panelReady(other.page, 'session');
  await other.page.getByLabel('Name', { exact: true }).fill(user);
  await other.page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await other.page.locator('#session-message', { hasText: `Signed in as ${user}.` }).waitFor();
  const otherId = await other.page.locator('#session-id').textContent();
  assert.notEqual(otherId, session.id);
  await page.getByRole('button', { name: 'Refresh list' }).click();
  await page.locator('#session-count', { hasText: /^2 live sessions\.$/ }).waitFor();
  const rows = page.locator('#session-list tr');
  assert.equal(await rows.count(), 2);
  assert.match(await rows.filter({ hasText: session.id }).textContent(), /this one/);
  assert.doesNotMatch(await rows.filter({ hasText: otherId }).textContent(), /this one/);
  await page.locator('#session').screenshot({ path: 'test-results/journey-2-sessions.png' });

  // Revoke the other device's session from the list; this one stays signed in.
  await page.getByRole('button', { name: `Revoke session ${otherId}`, exact: true }).click();
  await message.filter({ hasText: `Session ${otherId} revoked.` }).waitFor();
  assert.equal(await rows.count(), 1);
  assert.equal(await page.locator('#session-count').textContent(), '1 live session.');
  assert.match(await rows.first().textContent(), new RegExp(`${session.id}.*this one`));
  // The other device finds out on its next request.
  await other.page.getByRole('button', { name: 'Refresh list' }).click();
  await other.page.locator('#session-message', { hasText: 'Signed out: this session ended (revoked or expired).' }).waitFor();
  assert.equal(await other.page.locator('#session-current').isVisible(), false);
  assert.equal((await other.page.request.get(`${workerUrl}/api/session`)).status(), 401);

  // Rate limiting: the "burst" policy (GCRA, 5 per 10 s) for a fresh identifier, in bursts of 4.
  await panelReady(page, 'ratelimit');
  await page.getByLabel('Policy').selectOption('burst');
  assert.equal(await page.locator('#ratelimit-policy-info').textContent(), 'gcra: 5 per 10 s, burst 5.');
  await page.getByLabel('Identifier').fill(`journey-${randomUUID()}`);
  await page.getByLabel('Burst size').fill('4');
  const summary = page.locator('#ratelimit-summary');
  const bars = page.locator('#ratelimit-chart rect');
  const retry = page.locator('#ratelimit-retry');
  // Every text the retry field shows, as it changes (it counts down, so a read could come too late).
  await retry.evaluate((field) => {
    window.retryShown = [];
    new MutationObserver(() => window.retryShown.push(field.textContent)).observe(field, { childList: true, characterData: true, subtree: true });
  });
  const fire = page.getByRole('button', { name: 'Fire burst' });
  await fire.click();
  await summary.filter({ hasText: /^Burst of 4: 4 allowed, 0 denied\.$/ }).waitFor();
  assert.equal(await page.locator('#ratelimit-remaining').textContent(), '1 of 5');
  assert.equal(await retry.textContent(), 'now');
  assert.equal(await bars.count(), 4);
  assert.equal(await page.locator('#ratelimit-chart .bar-allowed').count(), 4);
  // Fire until refused (the budget refills one request every 2 s, so a slow machine may need another burst).
  const deniedInLastBurst = async () => Number(/(\d+) denied/.exec(await summary.textContent())[1]);
  let bursts = 1;
  while ((await deniedInLastBurst()) === 0 && bursts < 6) {
    await fire.click();
    bursts += 1;
    await page.waitForFunction((n) => document.querySelectorAll('#ratelimit-chart rect').length === n, 4 * bursts);
  }
  const refused = /^Burst of 4: (\d) allowed, ([1-4]) denied; retry in (\d+\.\d) s\.$/.exec(await summary.textContent());
  assert.ok(refused, `no refusal: ${await summary.textContent()}`);
  assert.equal(await page.locator('#ratelimit-remaining').textContent(), '0 of 5');
  await page.locator('#ratelimit').screenshot({ path: 'test-results/journey-3-ratelimit.png' });
  // Each refusal is in the log with its retry time; the chart has a red bar per refusal and the retry line.
  const deniedLog = page.locator('#ratelimit-log li.denied');
  assert.equal(await deniedLog.count(), Number(refused[2]));
  const retries = [];
  for (const item of await deniedLog.all()) {
    const line = /^denied · remaining 0 · retry after (\d+) ms · (limit_exceeded|blocked_locally)$/.exec(await item.textContent());
    assert.ok(line, await item.textContent());
    retries.push(Number(line[1]));
  }
  assert.ok(Math.max(...retries) > 0 && Math.max(...retries) <= 2_000, `retry after ${retries}`);
  assert.equal(refused[3], (Math.max(...retries) / 1000).toFixed(1), 'the summary says the longest retry time');
  assert.equal(await page.locator('#ratelimit-chart .bar-denied').count(), Number(refused[2]));
  assert.equal(await page.locator('#ratelimit-chart .retry-line').count(), 1);
  assert.match(await page.locator('#ratelimit-chart-title').textContent(),
    new RegExp(`^${4 * bursts} decisions, \\d+ allowed, ${refused[2]} denied; remaining 0\\.$`));
  // The retry field counted down from the retry time to "now".
  await retry.filter({ hasText: /^now$/ }).waitFor({ timeout: 5_000 });
  const shown = await page.evaluate(() => window.retryShown);
  const countdown = shown.filter((t) => /^\d+\.\d s$/.test(t)).map(parseFloat);
  assert.ok(countdown.length >= 1, `the countdown showed ${JSON.stringify(shown)}`);
  assert.ok(Math.abs(countdown[0] - Number(refused[3])) <= 0.1, `the countdown starts at the retry time: ${countdown[0]}`);
  assert.deepEqual([...countdown].sort((a, b) => b - a), countdown, 'the countdown only goes down');
  assert.equal(shown.at(-1), 'now');

  // Cached lookups: a fresh id (the other suites use 100 and up) is a miss, then a hit; invalidated, a miss again.
  await panelReady(page, 'cache');
  const id = String(2 + Math.floor(Math.random() * 98));
  const idField = page.getByLabel('Id', { exact: true });
  const badge = page.locator('#cache-status');
  const originCalls = page.locator('#cache-origin-calls');
  const latency = page.locator('#cache-latency');
  await idField.fill(id);
  await page.getByRole('button', { name: 'Look up' }).click();
  await badge.filter({ hasText: /^miss$/ }).waitFor();
  assert.match(await page.locator('#cache-message').textContent(), new RegExp(`^Id ${id}: miss\\.$`));
  assert.equal(JSON.parse(await page.locator('#cache-value').textContent()).id, Number(id));
  assert.match(await latency.textContent(), /^\d+ ms \(page \d+ ms\)$/);
  const missCalls = /^(\d+) in all \(this lookup called the origin\)$/.exec(await originCalls.textContent());
  assert.ok(missCalls, await originCalls.textContent());
  // The second lookup with the keyboard: Enter in the id field.
  await idField.press('Enter');
  await badge.filter({ hasText: /^hit$/ }).waitFor();
  assert.match(await latency.textContent(), /^\d+ ms \(page \d+ ms\)$/);
  assert.equal(await originCalls.textContent(), `${missCalls[1]} in all (this lookup did not)`);
  assert.match(await page.locator('#cache-hit-ratio').textContent(), /^\d{1,3}% of \d+ lookups \(this isolate\)$/);
  // The strip shows what each lookup cost: a miss reads and writes, a hit only reads.
  const lookups = page.locator('.strip-item', { hasText: `GET /api/lookup/${id} ` });
  assert.deepEqual(await lookups.evaluateAll((items) => items.map((i) => i.dataset.roundTrips)), ['1', '2']);
  await page.locator('#cache').screenshot({ path: 'test-results/journey-4-cache.png' });
  await page.getByRole('button', { name: 'Invalidate id' }).click();
  await page.locator('#cache-message', { hasText: `Id ${id} invalidated.` }).waitFor();
  await page.getByRole('button', { name: 'Look up' }).click();
  await badge.filter({ hasText: /^miss$/ }).waitFor();
  assert.equal(await originCalls.textContent(), `${Number(missCalls[1]) + 1} in all (this lookup called the origin)`);

  // With every panel filled in (long ids, the sessions table, logs), the page still fits a phone and its
  // text still has the contrast it needs.
  await page.setViewportSize({ width: 360, height: 740 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the filled-in page is ${overflow} px wider than a phone`);
  assert.deepEqual((await page.evaluate(lowContrastText)).failures, []);
  await page.screenshot({ path: 'test-results/journey-phone.png', fullPage: true });
  await page.setViewportSize({ width: 1280, height: 720 });

  // Sign out everywhere: with a second device signed in again, both sessions end.
  await other.page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await other.page.locator('#session-message', { hasText: `Signed in as ${user}.` }).waitFor();
  await page.getByRole('button', { name: 'Refresh list' }).click();
  await page.locator('#session-count', { hasText: /^2 live sessions\.$/ }).waitFor();
  await page.getByRole('button', { name: 'Sign out everywhere' }).click();
  await message.filter({ hasText: 'Signed out everywhere.' }).waitFor();
  assert.equal(await currentSession.isVisible(), false);
  assert.equal(await page.locator('#session').getAttribute('data-signed-in'), 'no');
  assert.equal((await page.request.get(`${workerUrl}/api/session`)).status(), 401);
  assert.equal((await other.page.request.get(`${workerUrl}/api/session`)).status(), 401);
  await other.page.getByRole('button', { name: 'Refresh list' }).click();
  await other.page.locator('#session-message', { hasText: 'Signed out: this session ended (revoked or expired).' }).waitFor();
  await page.locator('#session').screenshot({ path: 'test-results/journey-5-signed-out.png' });

  assert.deepEqual(problems, []);
  assert.deepEqual(other.problems, []);
  await other.page.close();
  await page.close();
});

test('the dashboard shows the visitor, the budget and the item, and a cached item costs one round trip', async () => {
  const { page, problems } = await openPage();
  await page.locator('#dashboard[data-state="ready"]').waitFor();
  await page.locator('#session[data-state="ready"]').waitFor();
  const user = `dash-${randomUUID().slice(0, 8)}`;
  await page.getByLabel('Name', { exact: true }).fill(user);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.locator('#session-user-shown').filter({ hasText: user }).waitFor();

  const item = String(100 + Math.floor(Math.random() * 800));
  await page.getByLabel('Item', { exact: true }).fill(item);
  const message = page.locator('#dashboard-message');
  await page.getByRole('button', { name: 'Load dashboard' }).click();
  await message.filter({ hasText: `Loaded item ${item}` }).waitFor();
  // The second load finds the item cached: the decision, the session and the item in one round trip.
  await page.getByLabel('Item', { exact: true }).press('Enter');
  await message.filter({ hasText: `Loaded item ${item} (hit) in 1 round trip.` }).waitFor();
  assert.equal(await page.locator('#dashboard-user').textContent(), user);
  assert.match(await page.locator('#dashboard-budget').textContent(), /^\d+ of 1000 \(api\)$/);
  assert.equal(await page.locator('#dashboard-value').textContent(), `Item ${item} (hit)`);
  // The metrics flush (one round trip every 10 s per isolate) may fall on this request.
  assert.match(await page.locator('#dashboard-round-trips').textContent(), /^1 round trip \([01] more in the background\)$/);
  await page.locator('#dashboard').screenshot({ path: 'test-results/dashboard.png' });
  assert.deepEqual(problems, []);
  await page.close();
});

test('a stale value is served at once and its refresh shows as one round trip in the background', async () => {
  // A Worker of its own: values stale after 1 s, no metrics flush (its round trip would count too).
  const worker = await startExtraWorker({ vars: { CACHE_TTL_MS: '1000', METRICS_FLUSH_MS: '0', DEMO_ORIGIN_LATENCY_MS: '20' } });
  try {
    const { page, problems } = await openPage({ url: worker.url });
    await page.locator('#cache[data-state="ready"]').waitFor();
    const id = String(2 + Math.floor(Math.random() * 98));
    const badge = page.locator('#cache-status');
    const lookups = page.locator('.strip-item', { hasText: `GET /api/lookup/${id} ` });
    await page.getByLabel('Id', { exact: true }).fill(id);
    await page.getByRole('button', { name: 'Look up' }).click();
    await badge.filter({ hasText: /^miss$/ }).waitFor();
    // The miss reads, calls the origin and writes before answering: two round trips, none left behind.
    assert.match(await lookups.first().textContent(), /2 round trips, 0 in background/);
    await page.waitForTimeout(1_300);
    await page.getByRole('button', { name: 'Look up' }).click();
    await badge.filter({ hasText: /^stale$/ }).waitFor();
    const stale = lookups.first();
    assert.equal(await stale.getAttribute('data-round-trips'), '1');
    assert.equal(await stale.getAttribute('data-background-trips'), '1');
    assert.match(await stale.textContent(), /1 round trip, 1 in background · Redis/);
    // Once the refresh has landed the next lookup is a fresh hit with nothing in the background, and the
    // isolate counted the background round trip.
    await page.waitForTimeout(300);
    await page.getByRole('button', { name: 'Look up' }).click();
    await badge.filter({ hasText: /^hit$/ }).waitFor();
    assert.match(await lookups.first().textContent(), /1 round trip, 0 in background/);
    const counted = await eventually(async () => {
      const text = await (await fetch(`${worker.url}/api/metrics?scope=isolate`)).text();
      const value = Number(/^redge_redis_background_round_trips_total (\S+)$/m.exec(text)?.[1] ?? 0);
      return value >= 1 ? value : null;
    });
    assert.ok(counted >= 1, `redge_redis_background_round_trips_total: ${counted}`);
    await page.locator('#strip').screenshot({ path: 'test-results/strip-background.png' });
    assert.deepEqual(problems, []);
    await page.close();
  } finally {
    await worker.stop();
  }
});
