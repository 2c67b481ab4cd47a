import { existsSync } from 'node:fs';

/** Debian's chromium package, driven by playwright-core. */
export const CHROMIUM = '/usr/bin/chromium';

/** Headless, sandbox-less (containers), and quiet: no update checks or background traffic leave loopback. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Whether the browser tests of `suite` can run: without Chromium they are
 * skipped with a warning, unless CI_REQUIRE_BROWSER is set (.ci/run sets it),
 * where a missing browser fails the run instead of skipping silently.
 */
export function browserAvailable(suite: string): boolean {
  const available = existsSync(CHROMIUM);
  if (!available && process.env.CI_REQUIRE_BROWSER) {
    throw new Error(`${CHROMIUM} is missing and CI_REQUIRE_BROWSER is set: install Debian's chromium package`);
  }
  if (!available) {
    console.warn(
      `Skipping the ${suite} browser tests: ${CHROMIUM} is missing (apt-get install chromium; set CI_REQUIRE_BROWSER=1 to fail instead)`,
    );
  }
  return available;
}
