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

async function openPage() {
  const page = await browser.newPage();
  const problems = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(message.text());
  });
  page.on('pageerror', (error) => problems.push(error.message));
  await page.goto(`${workerUrl}/`);
  return { page, problems };
}

test('the page shows that Redis is reachable, with no console errors', async () => {
  const { page, problems } = await openPage();
  const status = page.getByRole('status');
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
  const status = page.getByRole('status');
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
