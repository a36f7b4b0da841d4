// browser.js URL PORT SCREENSHOT - headless Chromium (Debian's, driven by
// playwright-core) opens weft's chat page twice, beside a real nc client; all
// three join one channel and each must see the other two's messages. Then one
// page's socket is closed under it: the page must say so, reconnect, rejoin
// and receive again. The CSP must not block anything. Exits 0 on success.
const { chromium } = require('playwright-core');
const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const [url, port, shot] = process.argv.slice(2);

function fail(msg) { console.error(msg); process.exit(1); }

// Poll with page.evaluate: playwright's waitForFunction evaluates a string in
// the page, which the page's CSP (rightly) refuses.
async function waitFor(page, fn, arg, what) {
  for (let i = 0; i < 200; i++) {
    if (await page.evaluate(fn, arg)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('timed out waiting for ' + what);
}
setTimeout(() => fail('timeout'), 60000);

async function main() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium', headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const problems = [];
  const nc = spawn('nc', ['127.0.0.1', port]);
  let ncOut = '';
  nc.stdout.on('data', (d) => { ncOut += d; });
  try {
    const pages = [];
    for (const nick of ['alice', 'bob']) {
      const p = await ctx.newPage();
      p.on('console', (m) => { if (/Content.Security.Policy|Refused/i.test(m.text())) problems.push(m.text()); });
      p.on('pageerror', (e) => problems.push(String(e)));
      await p.goto(url);
      await waitFor(p, () => document.getElementById('status').textContent === 'connected', null, 'connected');
      await p.fill('#nick', nick); await p.click('#nickf button');
      await p.fill('#chan', 'room'); await p.click('#joinf button');
      await waitFor(p, () => document.getElementById('log').textContent.includes('OK join room'), null, 'join');
      pages.push(p);
    }
    nc.stdin.write('/nick carol\n/join room\n');
    const has = (p, text) => waitFor(p, (t) => document.getElementById('log').textContent.includes(t), text, text);
    await new Promise((r) => setTimeout(r, 300)); // carol's join is on the wire
    await pages[0].fill('#text', 'hello from alice'); await pages[0].click('#sendf button');
    await pages[1].fill('#text', 'hi from bob'); await pages[1].click('#sendf button');
    nc.stdin.write('hey from carol\n');
    for (const [p, a, b] of [[pages[0], 'bob hi from bob', 'carol hey from carol'],
                             [pages[1], 'alice hello from alice', 'carol hey from carol']]) {
      await has(p, 'MSG room ' + a); await has(p, 'MSG room ' + b);
    }
    for (let i = 0; i < 100 && !(ncOut.includes('MSG room alice hello from alice') &&
                                 ncOut.includes('MSG room bob hi from bob')); i++)
      await new Promise((r) => setTimeout(r, 100));
    if (!ncOut.includes('MSG room alice hello from alice') || !ncOut.includes('MSG room bob hi from bob'))
      fail('nc did not get both pages\' messages: ' + ncOut);
    // A pattern's delivery (PMSG) is a message, shown as one, not as a system line.
    await pages[1].fill('#text', '/psub ro*'); await pages[1].click('#sendf button');
    await has(pages[1], 'OK psub ro*');
    nc.stdin.write('pattern hello\n');
    await has(pages[1], 'PMSG ro* room carol pattern hello');
    const cls = await pages[1].evaluate(() => [...document.querySelectorAll('#log div')]
      .filter((d) => d.textContent.startsWith('PMSG ')).map((d) => d.className));
    if (!cls.length || cls.some((c) => c !== 'msg')) fail('PMSG lines shown as ' + JSON.stringify(cls) + ', not msg');
    // Disconnection: the page shows it, reconnects, rejoins, and hears carol again.
    await pages[0].evaluate(() => ws.close());
    await waitFor(pages[0], () => document.getElementById('status').textContent.startsWith('disconnected'), null,
                  'the page to say it is disconnected');
    await waitFor(pages[0], () => document.getElementById('status').textContent === 'connected', null, 'reconnect');
    await has(pages[0], 'OK nick alice');
    await new Promise((r) => setTimeout(r, 300)); // its /join is on the wire
    nc.stdin.write('back again\n');
    await has(pages[0], 'MSG room carol back again');
    await pages[0].bringToFront(); // a background tab paints no frame to capture
    await pages[0].screenshot({ path: shot });
    if (problems.length) fail('page problems: ' + problems.join('; '));
    console.log('ok');
  } finally {
    nc.kill();
    await ctx.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}
main().then(() => process.exit(0), (e) => fail(String(e)));
