import { chromium, type Browser, type Page } from 'playwright-core';
import type { WebInboxNotifier } from '../../adapters/chat-web/web-inbox-notifier.js';

/** Debian's Chromium; never downloaded by the tests. */
export const CHROMIUM = '/usr/bin/chromium';

/** Headless Chromium as the browser tests run it. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
}

/** Signs `email` in on `page` as a person does (opens a fresh link, presses Continue) and waits until the list is loaded and live. */
export async function signInPage(page: Page, web: WebInboxNotifier, baseUrl: string, email: string): Promise<void> {
  await page.goto((await web.signInUrl(email, { baseUrl })).url);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForURL(`${baseUrl}/inbox`);
  await page.locator('#main[aria-busy="false"]').waitFor();
  await page.locator('#live[data-state="live"]').waitFor();
}
