import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page, type Response } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startApp, type RunningApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { startTestApp } from './helpers/app.js';
import { browserAvailable, CHROMIUM, CHROMIUM_ARGS } from './helpers/browser.js';

/**
 * GraphiQL in a real headless Chromium (Debian's `chromium` package), with
 * every request that leaves loopback blocked: the page must work offline.
 */
const available = browserAvailable('GraphiQL');

describe.skipIf(!available)('GraphiQL in a browser, offline', () => {
  let browser: BrowserContext;
  let userDataDir: string;

  beforeAll(async () => {
    userDataDir = mkdtempSync(join(tmpdir(), 'graphiql-chromium-'));
    // A fresh profile (--user-data-dir, which playwright takes as this argument).
    browser = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      viewport: { width: 1280, height: 800 },
      headless: true,
      args: ['--headless', ...CHROMIUM_ARGS],
    });
  });

  afterAll(async () => {
    await browser?.close();
    rmSync(userDataDir, { recursive: true, force: true });
  });

  /** A page whose every request off 127.0.0.1 is aborted and recorded. */
  async function openPage(): Promise<{ page: Page; offLoopback: string[] }> {
    const page = await browser.newPage();
    const offLoopback: string[] = [];
    await page.route('**/*', (route) => {
      const url = new URL(route.request().url());
      if (url.protocol === 'data:' || url.protocol === 'blob:' || url.hostname === '127.0.0.1') return route.continue();
      offLoopback.push(url.href);
      return route.abort();
    });
    return { page, offLoopback };
  }

  /**
   * The next schema introspection the page sends; with `authorization`, the next one sent with it
   * (GraphiQL may retry without a token while it is being typed, most often on a busy machine).
   */
  const introspection = (page: Page, authorization?: string): Promise<Response> =>
    page.waitForResponse(
      (response) =>
        response.url().includes('/graphql') &&
        (response.request().postData() ?? '').includes('__schema') &&
        (authorization === undefined || response.request().headers().authorization === authorization),
      { timeout: 10_000 },
    );

  async function expectSchemaInDocs(page: Page) {
    await page.getByRole('button', { name: /documentation explorer/i }).click();
    await page.locator('.graphiql-doc-explorer').getByText('Query', { exact: true }).first().waitFor({ state: 'visible', timeout: 10_000 });
  }

  test('with JWT_SECRET: the token is entered once, loads the schema and survives a reload', async () => {
    const app = await startTestApp();
    const { page, offLoopback } = await openPage();
    const pageUrl = app.url; // http://127.0.0.1:<port>/graphql

    const unauthorised = introspection(page);
    await page.goto(pageUrl);
    await page.locator('.graphiql-container').first().waitFor({ state: 'visible', timeout: 10_000 });
    expect((await unauthorised).status()).toBe(401);
    await page.locator('#token-bar').waitFor({ state: 'visible', timeout: 10_000 });

    const token = await app.token('tenant-a');
    const authorised = introspection(page, `Bearer ${token}`);
    await page.locator('#token-input').fill(token);
    await page.getByRole('button', { name: 'Use token' }).click();
    expect((await authorised).status()).toBe(200);
    await page.locator('.graphiql-container').first().waitFor({ state: 'visible', timeout: 10_000 });
    await expectSchemaInDocs(page);

    // The same tab, reloaded: the token is still in sessionStorage and sent.
    const again = introspection(page);
    await page.reload();
    expect((await again).status()).toBe(200);
    expect(await page.locator('#token-status').textContent()).toMatch(/Token set/);

    await page.screenshot({ path: '/tmp/graphiql.png' });
    expect(offLoopback).toEqual([]);
    await page.close();
  });

  test('embedded default: the development token is pre-filled and the schema loads without typing', async () => {
    let app: RunningApp | undefined;
    try {
      app = await startApp(loadConfig({ DATA_DIR: ':memory:', HOST: '127.0.0.1', PORT: '0' }), {
        logger: createLogger('silent'),
      });
      const { page, offLoopback } = await openPage();
      const loaded = introspection(page);
      await page.goto(app.url);
      await page.locator('.graphiql-container').first().waitFor({ state: 'visible', timeout: 10_000 });
      const response = await loaded;
      expect(response.status()).toBe(200);
      expect(await response.request().headerValue('authorization')).toBe(`Bearer ${app.devToken}`);
      expect(await page.locator('#token-bar').isHidden()).toBe(true);
      await expectSchemaInDocs(page);
      expect(offLoopback).toEqual([]);
      await page.close();
    } finally {
      await app?.stop();
    }
  });
});
