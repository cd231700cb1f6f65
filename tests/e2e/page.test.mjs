// The demo page in headless Chromium: what a person sees.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { redis, workerUrl } from './env.mjs';

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
async function openPage({ viewport, expectedStatuses = [] } = {}) {
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
  await page.goto(`${workerUrl}/`);
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

test('the strip shows each request with its Redis round trips and server time', async () => {
  const { page, problems } = await openPage();
  const health = page.locator('.strip-item', { hasText: 'GET /api/health' }).first();
  await health.waitFor({ timeout: 10_000 });
  assert.equal(await health.getAttribute('data-round-trips'), '1');
  assert.match(await health.textContent(), /200.*1 round trip · Redis \d+ ms · server \d+ ms · page \d+ ms/);
  // "Check again" adds a new health entry.
  const healthItems = page.locator('.strip-item', { hasText: 'GET /api/health' });
  const before = await healthItems.count();
  await page.getByRole('button', { name: 'Check again' }).click();
  await page.waitForFunction(
    (n) => [...document.querySelectorAll('.strip-item')].filter((e) => e.textContent.includes('GET /api/health')).length > n,
    before,
  );
  assert.match(await page.locator('#strip-summary').textContent(), /^\d+ requests, \d+ Redis round trips? in all\.$/);
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
