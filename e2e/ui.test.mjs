// The browser end-to-end test of the web UI: Debian's Chromium driven by playwright-core
// against a running ragd (e2e/run.sh starts it). It does what a user does: create an account,
// sign in, upload a Markdown file, wait for it to be ready, ask a question and watch the
// answer stream in with a citation, stop a second answer, delete the document. Then, in Swagger
// UI at /docs, it signs in through the Authorize dialog (OAuth2 password flow) and calls
// /api/v1/auth/me with "Try it out". Screenshots at desktop and phone width go to e2e/output/.
//
// Environment: BASE_URL (ragd), MOCK_LLM_URL (optional: the slow mock provider of
// mock-llm.mjs, whose model `e2e-slow` makes the Stop step deterministic).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const BASE_URL = process.env.BASE_URL || 'http://127.0.0.1:8000';
const MOCK_LLM_URL = process.env.MOCK_LLM_URL || '';
const OUTPUT = path.join(import.meta.dirname, 'output');
const WAIT = { timeout: 60_000 };

const DOCUMENT = `# Ferris the crab

Ferris is the unofficial mascot of the Rust programming language.
Ferris is an orange crab who likes safe systems programming.

## Habitat

Ferris lives in the Rust community and appears on stickers, shirts and documentation.
`;

let context;
let page;
let userDataDir;
const problems = [];
/** Set while a step provokes an error on purpose (a wrong password answers 401). */
let expectedStatus = null;

before(async () => {
  fs.mkdirSync(OUTPUT, { recursive: true });
  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ragd-e2e-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(30_000);
  // CSP violations, script errors and failed requests all surface here: the flow has none.
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    if (expectedStatus && message.text().includes(`status of ${expectedStatus}`)) return;
    problems.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
});

after(async () => {
  await context?.close();
  if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
});

async function screenshot(name) {
  await page.screenshot({ path: path.join(OUTPUT, `${name}.png`), fullPage: true });
}

async function atPhoneWidth(name) {
  await page.setViewportSize({ width: 390, height: 844 });
  await screenshot(name);
  await page.setViewportSize({ width: 1280, height: 800 });
}

/** The name of the first step that failed: the steps after it depend on it, so they skip. */
let broken = null;

/** A step of the flow, skipped once an earlier step has failed. */
function step(t, name, fn, { skip = false } = {}) {
  return t.test(name, { skip: skip || (broken ? `skipped: "${broken}" failed` : false) }, async () => {
    try {
      await fn();
    } catch (error) {
      broken = name;
      throw error;
    }
  });
}

async function signIn(email, password) {
  await page.fill('#auth-email', email);
  await page.fill('#auth-password', password);
  await page.press('#auth-password', 'Enter');
  await page.locator('#account-email').filter({ hasText: email }).waitFor();
  assert.equal(await page.isVisible('#app-view'), true);
}

test('a user chats with a document in the browser', async (t) => {
  const email = `e2e-${Date.now()}@example.com`;
  const password = 'correct horse battery';

  await step(t, 'the page loads with a strict CSP and shows the sign-in form', async () => {
    const response = await page.goto(BASE_URL);
    assert.equal(response.status(), 200);
    assert.match(response.headers()['content-security-policy'], /default-src 'self'/);
    await page.locator('#auth-view').waitFor();
    assert.equal(await page.evaluate(() => document.activeElement.id), 'auth-email');
    await atPhoneWidth('phone-sign-in');
  });

  await step(t, 'hostile Markdown renders as inert text', async () => {
    const result = await page.evaluate(async () => {
      const { render } = await import('/ui/js/markdown.js');
      const hostile = [
        '<script>window.pwned = 1</script>',
        '<img src=x onerror="window.pwned = 1">',
        '[a](javascript:window.pwned=1) [b](data:text/html,hi) ![c](https://example.com/c.png)',
        '**bold** [ok](https://example.com) `<b>code</b>`',
      ].join('\n\n');
      const box = document.createElement('div');
      box.append(render(hostile));
      document.body.append(box);
      await new Promise((resolve) => setTimeout(resolve, 100));
      const seen = {
        tags: [...box.querySelectorAll('*')].map((e) => e.tagName.toLowerCase()),
        hrefs: [...box.querySelectorAll('a')].map((a) => a.href),
        text: box.textContent,
        pwned: window.pwned === 1,
      };
      box.remove();
      return seen;
    });
    assert.equal(result.pwned, false);
    assert.deepEqual(result.tags.filter((tag) => !['p', 'strong', 'a', 'code'].includes(tag)), []);
    assert.deepEqual(result.hrefs, ['https://example.com/']);
    assert.match(result.text, /<script>window\.pwned = 1<\/script>/);
    assert.match(result.text, /<b>code<\/b>/);
  });

  await step(t, 'the SSE parser copes with events split across reads', async () => {
    const got = await page.evaluate(async () => {
      const { events } = await import('/ui/js/sse.js');
      const parts = ['data: {"tok', 'en":"a"}\n', '\ndata: {"token":"b"}\r\n\r\n: comment\n\n', 'data: {"done":true}\n\n'];
      const body = new ReadableStream({
        start(controller) {
          for (const part of parts) controller.enqueue(new TextEncoder().encode(part));
          controller.close();
        },
      });
      const seen = [];
      for await (const event of events(new Response(body))) seen.push(event);
      return seen;
    });
    assert.deepEqual(got, [{ token: 'a' }, { token: 'b' }, { done: true }]);
  });

  await step(t, 'register, then sign in', async () => {
    await page.click('#auth-switch');
    await page.locator('#auth-title', { hasText: 'Create an account' }).waitFor();
    await signIn(email, password);
    await page.click('#logout');
    await page.locator('#auth-view').waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'log out forgets the token');
    await page.fill('#auth-email', email);
    await page.fill('#auth-password', 'wrong password!');
    expectedStatus = 401;
    await page.press('#auth-password', 'Enter');
    await page.locator('#auth-error').filter({ hasText: /./ }).waitFor();
    expectedStatus = null;
    await signIn(email, password);
    assert.ok(await page.evaluate(() => Object.keys(sessionStorage).includes('ragd.token')));
  });

  await step(t, 'upload a Markdown file and wait until it is ready', async () => {
    await page.setInputFiles('#file-input', {
      name: 'ferris.md', mimeType: 'text/markdown', buffer: Buffer.from(DOCUMENT),
    });
    const row = page.locator('#document-list li', { hasText: 'ferris.md' });
    await row.waitFor();
    await row.locator('.badge', { hasText: 'Ready' }).waitFor(WAIT);
    assert.match(await row.locator('.doc-meta').textContent(), /\d+ chunks?/);
  });

  await step(t, 'ask a question: the answer streams in and cites the document', async () => {
    // Record what a watcher sees: the answer busy, its text growing.
    await page.evaluate(() => {
      window.__seen = { busy: false, texts: 0 };
      new MutationObserver(() => {
        const answer = document.querySelector('#messages .assistant:last-child');
        if (!answer) return;
        if (answer.getAttribute('aria-busy') === 'true') window.__seen.busy = true;
        if (answer.querySelector('.markdown').textContent) window.__seen.texts += 1;
      }).observe(document.getElementById('messages'), { subtree: true, childList: true, characterData: true, attributes: true });
    });
    await page.fill('#prompt', 'Who is Ferris the crab?');
    await page.press('#prompt', 'Enter');
    const answer = page.locator('#messages .assistant').last();
    await answer.and(page.locator('[data-state]')).waitFor(WAIT);
    assert.equal(await answer.getAttribute('data-state'), 'done', await answer.innerText());
    const seen = await page.evaluate(() => window.__seen);
    assert.ok(seen.busy, 'the answer was marked busy while streaming');
    assert.ok(seen.texts >= 1, 'the answer text appeared');
    assert.match(await answer.locator('.markdown').textContent(), /Ferris/);
    const source = answer.locator('.sources button.source').first();
    await source.waitFor();
    assert.match(await source.textContent(), /ferris\.md/);
    await screenshot('desktop-answer');
    await atPhoneWidth('phone-answer');

    await source.click();
    const dialog = page.locator('#source-dialog');
    await dialog.waitFor();
    assert.match(await page.textContent('#source-title'), /\[1\] ferris\.md/);
    assert.match(await page.textContent('#source-text'), /Ferris/);
    await screenshot('desktop-source');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
  });

  // The built-in answerer finishes at once: the slow mock model makes Stop deterministic.
  await step(t, 'stop an answer while it streams', async () => {
    await page.locator('#model option[value="e2e-slow"]').waitFor({ state: 'attached' });
    await page.selectOption('#model', 'e2e-slow');
    await page.fill('#prompt', 'Tell me a long story about Ferris.');
    await page.press('#prompt', 'Enter');
    const answer = page.locator('#messages .assistant').last();
    await answer.locator('.markdown').filter({ hasText: /\S/ }).waitFor(WAIT);
    await page.click('#stop');
    await answer.and(page.locator('[data-state="stopped"]')).waitFor();
    assert.match(await answer.locator('.message-footer').textContent(), /Stopped/);
    assert.equal(await page.isVisible('#send'), true);
    assert.equal(await page.isVisible('#stop'), false);
    // Stop reaches the provider: ragd drops the upstream request when the browser hangs up.
    let cancelled = 0;
    for (let i = 0; i < 100 && cancelled === 0; i += 1) {
      cancelled = (await (await fetch(`${MOCK_LLM_URL}/__state`)).json()).cancelled;
      if (cancelled === 0) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.ok(cancelled >= 1, 'the upstream stream was cancelled');
  }, { skip: !MOCK_LLM_URL && 'needs MOCK_LLM_URL' });

  await step(t, 'the dark theme follows the system setting', async () => {
    await page.emulateMedia({ colorScheme: 'dark' });
    const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    await screenshot('desktop-dark');
    await atPhoneWidth('phone-dark');
    await page.emulateMedia({ colorScheme: 'light' });
    assert.notEqual(background, await page.evaluate(() => getComputedStyle(document.body).backgroundColor));
  });

  await step(t, 'delete the document after confirming', async () => {
    const row = page.locator('#document-list li', { hasText: 'ferris.md' });
    const remove = row.getByRole('button', { name: 'Delete ferris.md' });
    // By keyboard: the dialog opens on its safe choice, and Escape keeps the document.
    await remove.focus();
    await page.keyboard.press('Enter');
    await page.locator('#confirm-dialog').waitFor();
    assert.equal(await page.evaluate(() => document.activeElement.id), 'confirm-cancel');
    await page.keyboard.press('Escape');
    await page.locator('#confirm-dialog').waitFor({ state: 'hidden' });
    assert.equal(await row.count(), 1);
    await remove.click();
    await page.locator('#confirm-dialog').waitFor();
    await page.click('#confirm-ok');
    await row.waitFor({ state: 'detached' });
    await page.locator('#documents-empty').waitFor();
    // Still gone after a reload: the server deleted it.
    await page.reload();
    await page.locator('#app-view').waitFor();
    await page.locator('#documents-empty').waitFor();
    assert.equal(await page.locator('#document-list li').count(), 0);
  });

  await t.test('no script errors or CSP violations', () => {
    assert.deepEqual(problems, []);
  });
});

test('Swagger UI signs in with an email and password, then calls the API', async (t) => {
  const email = `swagger-${Date.now()}@example.com`;
  const password = 'correct horse battery';
  const operation = page.locator('#operations-auth-me');

  await step(t, 'an account exists', async () => {
    const registered = await page.request.post(`${BASE_URL}/api/v1/auth/register`, {
      data: { email, password },
    });
    assert.equal(registered.status(), 201);
  });

  await step(t, 'the Authorize dialog takes the email and password (OAuth2 password flow)', async () => {
    await page.goto(`${BASE_URL}/docs/`);
    await page.locator('.btn.authorize').first().click();
    // The password flow's section (its inputs give way to the values once authorized).
    const passwordFlow = page.locator('.auth-container', { hasText: 'OAuth2, password' });
    await passwordFlow.locator('#oauth_username').fill(email);
    await passwordFlow.locator('#oauth_password').fill(password);
    await passwordFlow.getByRole('button', { name: 'Apply given OAuth2 credentials' }).click();
    await passwordFlow.getByText('Authorized').waitFor();
    await screenshot('swagger-authorized');
    await passwordFlow.getByRole('button', { name: 'Close' }).click();
  });

  await step(t, '"Try it out" on /api/v1/auth/me answers with the account', async () => {
    await operation.locator('.opblock-summary').first().click();
    await operation.locator('.try-out__btn').click();
    await operation.locator('.execute').click();
    const status = operation.locator('.live-responses-table tbody .response-col_status').first();
    await status.waitFor();
    assert.equal((await status.textContent()).trim(), '200');
    await operation.locator('.live-responses-table').getByText(email).first().waitFor();
  });

  await t.test('no script errors or CSP violations on the docs page', () => {
    assert.deepEqual(problems, []);
  });
});
