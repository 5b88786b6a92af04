// Drives a page written by `cugmm view` in headless Chromium (Debian's, through playwright-core; no browser
// download) with real mouse events, and writes what it saw to OUT/result.json for tests/test_view.cpp to judge
// against `cugmm decode` and the run's files:
//   node view_test.js PAGE.html OUT [--quick]
//   --quick: load, time to interactive and one hover only (the large-page timing test).
// Exit status 0 when the browser ran (the verdicts are the C++ test's), 2 when it could not start.
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const { chromium } = require('playwright-core');

const [pagePath, outDir] = process.argv.slice(2);
const quick = process.argv.includes('--quick');
const executablePath = process.env.CUGMM_CHROMIUM || '/usr/bin/chromium';

// A PNG screenshot's pixels (8-bit RGB or RGBA, not interlaced: what Chromium writes).
function decodePng(buf) {
  let pos = 8, width = 0, height = 0, channels = 0;
  const idat = [];
  while (pos < buf.length) {
    const len = buf.readUInt32BE(pos), type = buf.toString('ascii', pos + 4, pos + 8), data = buf.subarray(pos + 8, pos + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0); height = data.readUInt32BE(4);
      if (data[8] !== 8 || data[12] !== 0) throw new Error('unsupported PNG');
      channels = { 2: 3, 6: 4 }[data[9]];
    } else if (type === 'IDAT') idat.push(data);
    pos += 12 + len;
  }
  const raw = zlib.inflateSync(Buffer.concat(idat)), stride = width * channels, px = Buffer.alloc(height * stride);
  for (let y = 0; y < height; ++y) {
    const f = raw[y * (stride + 1)], line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; ++x) {
      const a = x >= channels ? px[y * stride + x - channels] : 0, b = y > 0 ? px[(y - 1) * stride + x] : 0;
      const c = x >= channels && y > 0 ? px[(y - 1) * stride + x - channels] : 0;
      let p = line[x];
      if (f === 1) p += a;
      else if (f === 2) p += b;
      else if (f === 3) p += (a + b) >> 1;
      else if (f === 4) { const e = a + b - c, pa = Math.abs(e - a), pb = Math.abs(e - b), pc = Math.abs(e - c); p += pa <= pb && pa <= pc ? a : pb <= pc ? b : c; }
      px[y * stride + x] = p & 255;
    }
  }
  return { width, height, channels, px };
}

// Within a box of the screenshot: the fraction of pixels unlike the panel's background, and distinct colours.
function panelStats(img, box, background) {
  let differ = 0, total = 0;
  const colours = new Set();
  for (let y = Math.round(box.y); y < Math.round(box.y + box.height); ++y)
    for (let x = Math.round(box.x); x < Math.round(box.x + box.width); ++x) {
      const o = (y * img.width + x) * img.channels, r = img.px[o], g = img.px[o + 1], b = img.px[o + 2];
      ++total;
      if (Math.abs(r - background[0]) + Math.abs(g - background[1]) + Math.abs(b - background[2]) > 24) ++differ;
      colours.add((r >> 3) << 10 | (g >> 3) << 5 | (b >> 3));
    }
  return { fraction: differ / total, colours: colours.size };
}

(async () => {
  let browser;
  try {
    browser = await chromium.launch({ executablePath, args: ['--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--no-sandbox'] });
  } catch (e) {
    console.error('cannot start ' + executablePath + ': ' + e.message);
    process.exit(2);
  }
  const result = { errors: [] };
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 }, acceptDownloads: true });
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') result.errors.push(m.type() + ': ' + m.text()); });
  page.on('pageerror', (e) => result.errors.push('exception: ' + e.message));
  page.on('request', (r) => { if (!r.url().startsWith('file:') && !r.url().startsWith('blob:') && !r.url().startsWith('data:')) result.errors.push('fetched ' + r.url()); });
  const started = Date.now();
  await page.goto('file://' + path.resolve(pagePath));
  await page.waitForFunction(() => window.cugmmView && window.cugmmView.ready, null, { timeout: 60000 });
  result.wallToReadyMs = Date.now() - started;
  result.interactiveMs = await page.evaluate(() => window.cugmmView.interactiveMs);
  const canvas = await page.locator('#scatter').boundingBox();

  // Hover: the mouse at 30% / 60% of the scatter; the page decodes the latent point there.
  const hover = async (fx, fy) => {
    const x = Math.round(canvas.x + fx * canvas.width), y = Math.round(canvas.y + fy * canvas.height);
    await page.mouse.move(x, y);
    // The page decodes on the next animation frame: wait until its point is the one under the mouse (to a
    // hundredth of a pixel: MouseEvent offsets may be rounded).
    await page.waitForFunction(([px, py]) => {
      const c = window.cugmmView.current(), p = window.cugmmView.planeToScreen(c.u, c.v);
      return Math.abs(p[0] - px) < 0.01 && Math.abs(p[1] - py) < 0.01;
    }, [x - canvas.x, y - canvas.y], { timeout: 10000 });
    return page.evaluate(() => window.cugmmView.current());
  };
  const t = Date.now();
  result.hover = await hover(0.12, 0.55);
  result.hoverMs = Date.now() - t;
  if (!quick) {
    result.hover2 = await hover(0.88, 0.45);
    // Lasso in the plane of the raw axes z1, z2, chosen through the page's own controls.
    const d = result.hover.z.length;
    await page.selectOption('#axis-x', String(d));
    await page.selectOption('#axis-y', String(d + 1));
    await page.check('input[name=mode][value=lasso]');
    const poly = [[0.2, 0.2], [0.55, 0.15], [0.7, 0.6], [0.35, 0.8], [0.15, 0.5]];
    await page.mouse.move(canvas.x + poly[0][0] * canvas.width, canvas.y + poly[0][1] * canvas.height);
    await page.mouse.down();
    for (const p of poly.slice(1)) await page.mouse.move(canvas.x + p[0] * canvas.width, canvas.y + p[1] * canvas.height, { steps: 4 });
    await page.mouse.up();
    result.lasso = await page.evaluate(() => window.cugmmView.state.lasso);
    result.selected = await page.evaluate(() => window.cugmmView.state.selection.length);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-star')]);
    await download.saveAs(path.join(outDir, 'selection.star'));
    const [pdb] = await Promise.all([page.waitForEvent('download'), page.click('#save-pdb')]);
    await pdb.saveAs(path.join(outDir, 'decoded.pdb'));
    result.pdbZ = await page.evaluate(() => window.cugmmView.current().z);
    // Back to the PCA plane, a path drawn and played for a moment: the model must move.
    await page.selectOption('#axis-x', '0');
    await page.selectOption('#axis-y', '1');
    await page.check('input[name=mode][value=path]');
    await page.mouse.move(canvas.x + 0.2 * canvas.width, canvas.y + 0.5 * canvas.height);
    await page.mouse.down();
    await page.mouse.move(canvas.x + 0.8 * canvas.width, canvas.y + 0.5 * canvas.height, { steps: 10 });
    await page.mouse.up();
    const a = await page.evaluate(() => window.cugmmView.current().z);
    await page.waitForTimeout(700);
    const b = await page.evaluate(() => window.cugmmView.current().z);
    result.pathMoved = Math.hypot(...a.map((x, i) => x - b[i]));
    await page.click('#play');  // stop, so the screenshot is of one point
    await page.mouse.move(canvas.x + 0.5 * canvas.width, canvas.y + 0.4 * canvas.height);
  }
  await page.screenshot({ path: path.join(outDir, 'screenshot.png') });
  // The panels' own drawing: the canvases, with the colour bars and the overlay hidden.
  await page.addStyleTag({ content: '.bar, #overlay, #licences { display: none !important; }' });
  const img = decodePng(await page.screenshot());
  result.left = panelStats(img, await page.locator('#scatter').boundingBox(), [255, 255, 255]);
  result.right = panelStats(img, await page.locator('#model').boundingBox(), [244, 244, 244]);
  fs.writeFileSync(path.join(outDir, 'result.json'), JSON.stringify(result, null, 1));
  await browser.close();
})().catch((e) => { console.error(e); process.exit(1); });
