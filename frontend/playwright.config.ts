import { defineConfig } from '@playwright/test';

// Debian's Chromium, never a downloaded browser; run by e2e/run.sh, which
// starts the binary and passes E2E_BASE_URL and E2E_PASSWORD.
export default defineConfig({
  testDir: './e2e',
  outputDir: './test-results/output',
  timeout: 90_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1, // 2 cores: the browser, the binary and PostgreSQL share them
  retries: 0,
  reporter: [['list']],
  use: {
    baseURL: process.env.E2E_BASE_URL ?? 'http://127.0.0.1:8080',
    headless: true,
    viewport: { width: 1366, height: 860 },
    screenshot: 'only-on-failure',
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    },
  },
});
