/**
 * The dashboard (/dashboard) in a real headless Chromium (Debian's `chromium`
 * package), driven by playwright-core, against real servers. Every request
 * that leaves loopback is blocked: the page must work offline. The bundle is
 * built here, into a temporary directory, as `npm run build` would.
 *
 * Screenshots: /tmp/dashboard-*.png, to look at; with
 * UPDATE_README_SCREENSHOT=1 the desktop one is also written to
 * docs/dashboard.png (the README's), which a plain test run never changes.
 */
import { mkdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { buildDashboard, FIRST_LOAD_BUDGET_BYTES, type DashboardBuild } from '../scripts/build-dashboard.js';
import { startApp, type RunningApp } from '../src/app.js';
import { mintToken } from '../src/auth/mint-token.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { CREATE_SFN_TASK, CREATE_TASK, startTestApp, TEST_SECRET, UPDATE_STATUS, type TestApp } from './helpers/app.js';
import { browserAvailable, CHROMIUM, CHROMIUM_ARGS } from './helpers/browser.js';

const available = browserAvailable('dashboard');

const DOCS_SCREENSHOT = process.env.UPDATE_README_SCREENSHOT
  ? join(import.meta.dirname, '..', 'docs', 'dashboard.png')
  : join(tmpdir(), 'dashboard-desktop.png');
const logger = createLogger('silent');
const cleanup: (() => unknown)[] = [];
let dashboardDir: string;
let built: DashboardBuild;

beforeAll(async () => {
  dashboardDir = await mkdtemp(join(tmpdir(), 'dashboard-build-'));
  built = await buildDashboard(dashboardDir);
});

afterAll(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
  await rm(dashboardDir, { recursive: true, force: true });
});

const dashboardUrl = (app: { url: string }) => app.url.replace(/\/graphql$/, '/dashboard');

async function post(url: string, token: string | undefined, query: string, variables: Record<string, unknown> = {}) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token && { authorization: `Bearer ${token}` }) },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: any; errors?: unknown[] };
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

describe('serving /dashboard', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({}, { dashboardDir });
  });

  test('the page is never cached and carries no token without the embedded default; assets are hashed, gzipped and cached for good', async () => {
    const page = await fetch(dashboardUrl(app), { headers: { 'accept-encoding': 'gzip' } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('cache-control')).toBe('no-cache');
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await page.text();
    const config = JSON.parse(/<script type="application\/json" id="dashboard-config">(.*?)<\/script>/s.exec(html)![1]!);
    expect(config).toEqual({
      graphqlPath: '/graphql',
      claims: { user: 'sub', tenant: 'custom:tenant', roles: 'custom:roles' },
      adminRole: 'system_admin',
    });
    const script = /<script type="module" src="(\/dashboard\/main-[A-Z0-9]{8}\.js)">/.exec(html)?.[1];
    const style = /<link rel="stylesheet" href="(\/dashboard\/main-[A-Z0-9]{8}\.css)">/.exec(html)?.[1];
    expect(script && style).toBeTruthy();
    // The trailing-slash form is the same page.
    expect((await fetch(`${dashboardUrl(app)}/`)).status).toBe(200);

    const origin = new URL(app.url).origin;
    const asset = await fetch(`${origin}${script}`, { headers: { 'accept-encoding': 'gzip' } });
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-encoding')).toBe('gzip');
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(asset.headers.get('content-type')).toMatch(/^text\/javascript/);
    // The first load's compressed JavaScript, as served: the one bundle.
    const served = Number(asset.headers.get('content-length'));
    console.info(
      `dashboard first load: ${(served / 1024).toFixed(1)} KB of gzipped JavaScript (${(built.files[1]!.bytes / 1024).toFixed(1)} KB minified)`,
    );
    expect(served).toBeGreaterThan(0);
    expect(served).toBeLessThanOrEqual(FIRST_LOAD_BUDGET_BYTES);
    expect((await fetch(`${origin}${style}`)).headers.get('content-type')).toMatch(/^text\/css/);

    expect((await fetch(`${origin}/dashboard/main-AAAAAAAA.js`)).status).toBe(404);
    expect((await fetch(`${origin}/dashboard/../package.json`)).status).toBe(404);
    expect((await fetch(`${origin}/dashboard/index.html`, { method: 'POST' })).status).toBe(404);
  });

  test('without a build the page answers 503 with what to run; DASHBOARD=false serves nothing', async () => {
    const unbuilt = await startTestApp({}, { dashboardDir: join(dashboardDir, 'absent') });
    const missing = await fetch(dashboardUrl(unbuilt));
    expect(missing.status).toBe(503);
    expect(await missing.text()).toMatch(/npm run build/);
    // The server goes on serving everything else.
    expect((await fetch(unbuilt.url.replace('/graphql', '/healthz'))).status).toBe(200);

    const off = await startTestApp({ DASHBOARD: 'false' }, { dashboardDir });
    const response = await fetch(dashboardUrl(off));
    expect(response.status).toBe(404);
    expect(await response.text()).not.toMatch(/dashboard-config/);
  });
});

describe.skipIf(!available)('the dashboard in a browser, offline', () => {
  let browser: Browser;

  beforeAll(async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
    });
    cleanup.push(() => browser.close());
  });

  interface OpenPage {
    page: Page;
    context: BrowserContext;
    /** Requests off 127.0.0.1, aborted. */
    offLoopback: string[];
    /** Uncaught errors in the page. */
    errors: string[];
  }

  /** A fresh browser profile (its own sessionStorage) and a page in it; off-loopback requests are aborted and recorded. */
  async function openPage(viewport = { width: 1280, height: 800 }): Promise<OpenPage> {
    const context = await browser.newContext({ viewport });
    cleanup.push(() => context.close());
    const page = await context.newPage();
    // Shorter than the test's own timeout, so a failure names the element it waited for.
    page.setDefaultTimeout(10_000);
    const offLoopback: string[] = [];
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.route('**/*', (route) => {
      const url = new URL(route.request().url());
      if (url.protocol === 'data:' || url.hostname === '127.0.0.1') return route.continue();
      offLoopback.push(url.href);
      return route.abort();
    });
    return { page, context, offLoopback, errors };
  }

  const row = (page: Page, id: string) => page.locator(`li.task-row[data-id="${id}"]`);
  const badge = (page: Page) => page.locator('.top .badge');
  const detail = (page: Page) => page.locator('article.detail');
  /** Marks the document: still marked later means it was never reloaded. */
  const markDocument = (page: Page) => page.evaluate(() => ((window as unknown as { unreloaded: boolean }).unreloaded = true));
  const stillSameDocument = (page: Page) => page.evaluate(() => (window as unknown as { unreloaded?: boolean }).unreloaded === true);
  const progressValue = async (locator: Locator) => Number((await locator.locator('progress').first().getAttribute('value')) ?? NaN);

  async function expectLive(page: Page) {
    await badge(page).and(page.locator('[data-state="live"]')).waitFor({ timeout: 10_000 });
  }

  /** Retries an assertion until it passes: vitest's own vi.waitFor, at the pace of a page's updates. */
  const eventually = (check: () => Promise<void>, timeout = 10_000) => vi.waitFor(check, { timeout, interval: 100 });

  test('embedded default: signed in with the development token; new tasks appear within a second; progress moves; a Step Functions task in detail', async () => {
    const app: RunningApp = await startApp(
      loadConfig({
        DATA_DIR: ':memory:',
        HOST: '127.0.0.1',
        PORT: '0',
        SFN_MAX_CONCURRENCY: '1',
        PROGRESS_INTERVAL_MS: '200',
        SHUTDOWN_GRACE_MS: '0',
      }),
      { logger, dashboardDir },
    );
    cleanup.push(() => app.stop());
    const gql = (query: string, variables: Record<string, unknown>) => post(app.url, app.devToken, query, variables);
    const { page, offLoopback, errors } = await openPage();

    const firstQuery = page.waitForRequest((request) => request.url().endsWith('/graphql') && request.method() === 'POST');
    await page.goto(dashboardUrl(app));
    expect(await (await firstQuery).headerValue('authorization')).toBe(`Bearer ${app.devToken}`);
    await expect(page.locator('#token-input').count()).resolves.toBe(0);
    await expect(page.locator('.top .who').textContent()).resolves.toMatch(/tenant demo .*development token/);
    await expectLive(page);
    await markDocument(page);

    // Created through the API, each must show up within a second, without a reload.
    const created: string[] = [];
    for (const input of [{ n: 1 }, { error: 'bad row', retryable: false }]) {
      const { createTask } = await gql(CREATE_TASK, { input: { taskType: 'ECHO', input } });
      const started = Date.now();
      await row(page, createTask.id).waitFor({ timeout: 1_000 });
      expect(Date.now() - started).toBeLessThan(1_000);
      created.push(createTask.id);
    }
    const held = (await gql(CREATE_TASK, { input: { taskType: 'HOLD', input: {} } })).createTask.id as string;
    await row(page, held).waitFor({ timeout: 1_000 });
    await eventually(async () => expect(await row(page, created[0]!).getAttribute('data-status')).toBe('COMPLETED'));
    await eventually(async () => expect(await row(page, created[1]!).getAttribute('data-status')).toBe('FAILED'));
    // No handler for HOLD: queued, and left there for a backend.
    await eventually(async () => expect(await row(page, held).getAttribute('data-status')).toBe('QUEUED'));

    // SLEEP reports { current, total } as it goes: the row's bar moves in place.
    const sleep = (await gql(CREATE_TASK, { input: { taskType: 'SLEEP', input: { ms: 12_000, steps: 24 } } })).createTask.id as string;
    await row(page, sleep).locator('progress').waitFor({ timeout: 5_000 });
    const before = await progressValue(row(page, sleep));
    await eventually(async () => expect(await progressValue(row(page, sleep))).toBeGreaterThan(before), 5_000);
    await expect(row(page, sleep).getAttribute('data-status')).resolves.toBe('PROCESSING');

    // A Step Functions task, opened by its link: counts bar, failed sub-tasks first, a page of sub-tasks.
    const input = Array.from({ length: 30 }, (_, i) => (i === 2 || i === 5 ? { ms: -1 } : { ms: 400 }));
    const sfn = (await gql(CREATE_SFN_TASK, { input: { taskType: 'SLEEP', name: 'Nightly import', input } })).createStepFunctionTask
      .id as string;
    await page.evaluate((id) => (location.hash = `task=${encodeURIComponent(id)}`), sfn);
    await detail(page).getByRole('heading', { name: 'Nightly import' }).waitFor();
    const counts = detail(page).locator('.counts figcaption');
    await eventually(async () => {
      expect(await counts.textContent()).toMatch(/Succeeded [1-9]\d*/);
      expect(await counts.textContent()).toMatch(/Failed 2/);
    }, 20_000);
    const failed = detail(page).getByRole('list', { name: 'Failed sub-tasks' }).locator('li');
    await eventually(async () => expect(await failed.locator('.index').allTextContents()).toEqual(['#2', '#5']));
    const pageOfSubTasks = detail(page).getByRole('list', { name: 'Sub-tasks, page 1' }).locator('li');
    await expect(pageOfSubTasks.count()).resolves.toBe(20);
    // In input order once the parent runs (opened before that, the page is read again then).
    await eventually(async () =>
      expect(await pageOfSubTasks.locator('.index').allTextContents()).toEqual(input.slice(0, 20).map((_, i) => `#${i}`)),
    );
    await eventually(async () => expect(await pageOfSubTasks.nth(2).locator('.pill').textContent()).toBe('FAILED'));

    // Side by side on a desktop.
    const listBox = (await page.locator('section.list').boundingBox())!;
    const detailBox = (await detail(page).boundingBox())!;
    expect(detailBox.x).toBeGreaterThanOrEqual(listBox.x + listBox.width);
    mkdirSync(join(DOCS_SCREENSHOT, '..'), { recursive: true });
    await page.screenshot({ path: DOCS_SCREENSHOT });

    // Stacked on a phone, nothing wider than the screen.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(100);
    const stackedList = (await page.locator('section.list').boundingBox())!;
    const stackedDetail = (await detail(page).boundingBox())!;
    expect(stackedDetail.y).toBeGreaterThanOrEqual(stackedList.y + stackedList.height);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await page.screenshot({ path: '/tmp/dashboard-phone.png', fullPage: true });
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: '/tmp/dashboard-phone-top.png' });

    expect(await stillSameDocument(page)).toBe(true);
    expect(offLoopback).toEqual([]);
    expect(errors).toEqual([]);
  });

  describe('with JWT_SECRET', () => {
    let app: TestApp;
    let token: string;
    const gql = (query: string, variables: Record<string, unknown> = {}, as = token) => post(app.url, as, query, variables);
    const create = async (taskType: string) =>
      (await gql(CREATE_TASK, { input: { taskType, input: { from: 'test' } } })).createTask.id as string;

    beforeAll(async () => {
      app = await startTestApp({}, { dashboardDir });
      token = await app.token('tenant-a', { userId: 'alice' });
    });

    test('a pasted token is kept for the tab; cancel, re-run and bulk cancel work from the page, each after a confirmation', async () => {
      const { page, offLoopback, errors } = await openPage();
      await page.goto(dashboardUrl(app));
      await page.getByLabel('Bearer token').fill(token);
      await page.getByRole('button', { name: 'Use token' }).click();
      await expectLive(page);
      // The same tab, reloaded: still signed in.
      await page.reload();
      await expectLive(page);
      await expect(page.locator('.top .who').textContent()).resolves.toMatch(/alice · tenant tenant-a/);
      await markDocument(page);

      // By keyboard: a row is a link, Enter opens it; Escape dismisses a confirmation and changes nothing.
      const target = await create('HOLD');
      await row(page, target).locator('a').focus();
      await page.keyboard.press('Enter');
      await detail(page).getByRole('heading', { name: 'HOLD' }).waitFor();
      await expect(page.evaluate(() => document.activeElement?.id)).resolves.toBe('detail-title');
      await page.getByRole('button', { name: 'Cancel task…' }).focus();
      await page.keyboard.press('Enter');
      await page.getByRole('dialog', { name: 'Cancel this task?' }).waitFor();
      await page.keyboard.press('Escape');
      await page.getByRole('dialog').waitFor({ state: 'detached' });
      expect((await gql(`query($id: ID!) { task(id: $id) { status } }`, { id: target })).task.status).toBe('CREATED');
      await page.getByRole('button', { name: 'Cancel task…' }).click();
      const dialog = page.getByRole('dialog', { name: 'Cancel this task?' });
      await dialog.waitFor();
      // "Back" is focused first: Enter alone cancels nothing.
      await expect(dialog.getByRole('button', { name: 'Back' }).evaluate((button) => button === document.activeElement)).resolves.toBe(
        true,
      );
      await dialog.getByRole('button', { name: 'Cancel task' }).click();
      await detail(page)
        .locator('.actions .outcome', { hasText: /^Cancelled: the task is FAILED/ })
        .waitFor();
      await eventually(async () => expect(await row(page, target).getAttribute('data-status')).toBe('FAILED'));
      expect((await gql(`query($id: ID!) { task(id: $id) { status attributes } }`, { id: target })).task).toMatchObject({
        status: 'FAILED',
        attributes: { error: { code: 'CANCELLED' } },
      });

      await detail(page).getByRole('button', { name: 'Re-run…' }).click();
      await page.getByRole('dialog', { name: 'Re-run this task?' }).getByRole('button', { name: 'Re-run' }).click();
      await detail(page)
        .locator('.actions .outcome', { hasText: /^Re-run started as task/ })
        .waitFor();
      await detail(page).getByRole('button', { name: 'Open it' }).click();
      await detail(page).locator('dt', { hasText: 'Re-run of' }).waitFor();
      const rerunId = decodeURIComponent(new URL(page.url()).hash.replace('#task=', ''));
      expect(rerunId).not.toBe(target);
      expect((await gql(`query($id: ID!) { task(id: $id) { rerunOf status } }`, { id: rerunId })).task).toEqual({
        rerunOf: target,
        status: 'CREATED',
      });
      await row(page, rerunId).waitFor({ timeout: 1_000 });

      // Bulk: the list's filter (type BULK) decides what is cancelled.
      const bulk = [await create('BULK'), await create('BULK'), await create('BULK')];
      const kept = await create('KEEP');
      await page.getByLabel('Type').fill('BULK');
      await page.getByLabel('Type').press('Enter');
      await eventually(async () => expect(await page.locator('li.task-row').count()).toBe(3));
      await page.getByRole('button', { name: 'Cancel matching…' }).click();
      const bulkDialog = page.getByRole('dialog', { name: 'Cancel every matching task?' });
      await expect(bulkDialog.textContent()).resolves.toMatch(/Every unfinished top-level task of type BULK created before /);
      await page.screenshot({ path: '/tmp/dashboard-confirm.png' });
      await bulkDialog.getByRole('button', { name: 'Cancel them' }).click();
      await eventually(async () =>
        expect(await page.locator('.bulk .outcome').textContent()).toBe('Cancelled 3, skipped 0 (already finished).'),
      );
      for (const id of bulk) await eventually(async () => expect(await row(page, id).getAttribute('data-status')).toBe('FAILED'));
      expect((await gql(`query($id: ID!) { task(id: $id) { status } }`, { id: kept })).task.status).toBe('CREATED');

      await page.screenshot({ path: '/tmp/dashboard-actions.png' });
      expect(await stillSameDocument(page)).toBe(true);
      expect(offLoopback).toEqual([]);
      expect(errors).toEqual([]);
    });

    test('a viewer link sees only its tasks, live, with no listing, filters or actions', async () => {
      const [a, b, other] = [await create('REPORT'), await create('REPORT'), await create('REPORT')];
      const viewer = (await gql(`mutation($ids: [ID!]) { createViewerToken(ids: $ids, ttlSeconds: 600) { token } }`, { ids: [a, b] }))
        .createViewerToken.token as string;
      const { page, offLoopback, errors } = await openPage({ width: 390, height: 844 });
      const operations: string[] = [];
      page.on('request', (request) => {
        if (request.method() === 'POST' && request.url().endsWith('/graphql')) operations.push(request.postData() ?? '');
      });
      await page.goto(`${dashboardUrl(app)}#token=${viewer}`);
      await expectLive(page);
      await row(page, a).waitFor();
      await row(page, b).waitFor();
      await expect(page.locator('li.task-row').count()).resolves.toBe(2);
      await expect(row(page, other).count()).resolves.toBe(0);
      // The token leaves the address bar (and so bookmarks and shared links).
      expect(page.url()).not.toContain('token=');
      await expect(page.locator('.top .who').textContent()).resolves.toMatch(/Viewer link · tenant tenant-a/);
      await expect(page.getByRole('form', { name: 'Filters' }).count()).resolves.toBe(0);
      await expect(page.getByRole('button', { name: 'Cancel matching…' }).count()).resolves.toBe(0);

      await gql(UPDATE_STATUS, { input: { id: a, status: 'PROCESSING', attributes: { progress: { current: 2, total: 5 } } } });
      await eventually(async () => expect(await row(page, a).getAttribute('data-status')).toBe('PROCESSING'));
      expect(await progressValue(row(page, a))).toBe(2);
      await row(page, a).locator('a').click();
      await detail(page).locator('[data-field="version"]', { hasText: /^2$/ }).waitFor();
      await expect(detail(page).getByRole('button', { name: 'Cancel task…' }).count()).resolves.toBe(0);
      await page.screenshot({ path: '/tmp/dashboard-viewer-phone.png', fullPage: true });

      // Only the public API, and only what a viewer may: no listing was ever asked for.
      expect(operations.length).toBeGreaterThan(0);
      expect(operations.filter((body) => /\btasks\(/.test(body))).toEqual([]);
      expect(offLoopback).toEqual([]);
      expect(errors).toEqual([]);
    });
  });

  test('after a server restart the page reconnects by itself and shows every change made while it was away', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'dashboard-restart-'));
    cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
    const env = { DATA_DIR: dataDir, JWT_SECRET: TEST_SECRET, HOST: '127.0.0.1', TASK_EXECUTION: 'false', SHUTDOWN_GRACE_MS: '0' };
    const start = (port: string) => startApp(loadConfig({ ...env, PORT: port }), { logger, dashboardDir });
    let server = await start('0');
    cleanup.push(() => server.stop());
    const { url } = server;
    const token = await mintToken({ secret: TEST_SECRET, tenantCode: 'restart', userId: 'restarter' });
    const create = async (on: string) =>
      (await post(on, token, CREATE_TASK, { input: { taskType: 'REPORT', input: {} } })).createTask.id as string;

    const { page, offLoopback } = await openPage();
    await page.goto(`${dashboardUrl(server)}#token=${token}`);
    await expectLive(page);
    const [a, b] = [await create(url), await create(url)];
    await row(page, a).waitFor({ timeout: 1_000 });
    await row(page, b).waitFor({ timeout: 1_000 });
    await markDocument(page);

    await server.stop();
    await badge(page).and(page.locator('[data-state="reconnecting"]')).waitFor({ timeout: 5_000 });

    // Changes made while the page is away: on the same data, by another server on another port.
    const meanwhile = await start('0');
    await post(meanwhile.url, token, UPDATE_STATUS, {
      input: { id: a, status: 'PROCESSING', attributes: { progress: { current: 3, total: 10 } } },
    });
    const c = await create(meanwhile.url);
    await meanwhile.stop();

    server = await start(new URL(url).port);
    expect(server.url).toBe(url);
    await expectLive(page);
    await eventually(async () => expect(await row(page, a).getAttribute('data-status')).toBe('PROCESSING'));
    expect(await progressValue(row(page, a))).toBe(3);
    await row(page, c).waitFor({ timeout: 5_000 });
    await expect(row(page, b).getAttribute('data-status')).resolves.toBe('CREATED');
    // And live again after that.
    await post(url, token, UPDATE_STATUS, { input: { id: b, status: 'FAILED' } });
    await eventually(async () => expect(await row(page, b).getAttribute('data-status')).toBe('FAILED'));
    const order = await page.locator('li.task-row').evaluateAll((rows) => rows.map((li) => li.getAttribute('data-id')));
    expect(order).toEqual([c, b, a]);
    expect(await stillSameDocument(page)).toBe(true);
    expect(offLoopback).toEqual([]);
  });
});
