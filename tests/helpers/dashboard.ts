/**
 * The dashboard in headless Chromium (playwright-core with Debian's /usr/bin/chromium, or CHROMIUM_PATH): one
 * browser per test file, a page per test, unlocked with a key when the host checks keys. What the dashboard
 * suites share.
 */
import { chromium, type Browser, type Page } from 'playwright-core';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
export const VIEWPORT = { width: 1280, height: 900 };

/**
 * Launches Chromium before the file's tests without waiting for it, so that it starts while the file's own setup
 * (Azurite, the host, its first jobs) runs; the returned function resolves the browser. It is closed after the
 * file's tests, even when they or the setup failed. Call it before the file's beforeAll.
 */
export function useChromium(): () => Promise<Browser> {
  let launching: Promise<Browser> | undefined;
  beforeAll(() => {
    launching = chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    launching.catch(() => undefined); // reported where the file awaits it
  });
  afterAll(async () => {
    const browser = await launching?.catch(() => undefined);
    await browser?.close().catch(() => undefined);
  }, 30000);
  return () => launching!;
}

/** A new page and the uncaught exceptions it throws (`page: …`), from its first request on. */
export async function newPage(browser: Browser): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: VIEWPORT });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`page: ${e.message}`));
  return { page, errors };
}

/** Types a key into the locked page's form. */
export async function unlock(page: Page, key: string): Promise<void> {
  await page.waitForSelector('#lock:not([hidden])', { timeout: 10000 });
  await page.fill('#key-input', key);
  await page.click('#key-form button[type=submit]');
}

export interface OpenOptions {
  /** The key typed into the locked page; none for a host that checks no keys. */
  readonly key?: string;
  /** After the API's base URL; /dashboard unless given. */
  readonly route?: string;
  /**
   * Also collect console errors (`console: …`), from the unlock on: the browser logs each keyless call's 401 as a
   * console error before the key is typed, which is the locked state working, not a fault.
   */
  readonly consoleErrors?: boolean;
  /** Runs on the new page before it loads (request listeners, routes). */
  readonly prepare?: (page: Page) => void | Promise<void>;
}

/** The dashboard at `${url}${route}`, unlocked when a key is given, once its content shows. */
export async function openDashboard(
  browser: Browser,
  url: string,
  opts: OpenOptions = {},
): Promise<{ page: Page; errors: string[] }> {
  const { page, errors } = await newPage(browser);
  let unlocked = opts.key === undefined;
  if (opts.consoleErrors)
    page.on('console', (m) => unlocked && m.type() === 'error' && errors.push(`console: ${m.text()}`));
  await opts.prepare?.(page);
  await page.goto(`${url}${opts.route ?? '/dashboard'}`);
  if (opts.key !== undefined) await unlock(page, opts.key);
  await page.waitForSelector('#content:not([hidden])', { timeout: 10000 });
  unlocked = true;
  return { page, errors };
}
