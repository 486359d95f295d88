// The storefront in a real browser (k6 browser + Debian's Chromium, headless): each
// iteration walks home → category → product → add to cart → checkout → place order,
// and the order page must show the order paid and its live feed connected. Per page
// it records FCP, LCP and the load event (ms since navigation start) in the trends
// storefront_fcp_ms / storefront_lcp_ms / storefront_load_ms, tagged page=<name>.
//
// Run it through tests/bench/storefront.py or tests/integration/test_storefront.py,
// which set the environment ../shared/notes/browser.md prescribes (no sandbox as root,
// proxy-server=http://127.0.0.1:9 so Chromium never reaches past loopback).
//
// Env: BASE_URL (nginx), VUS (1), ITERATIONS (1), MAX_DURATION (2m), CUSTOMER_ID (1),
// LOAD_MS (2000) and LCP_MS (2500): the p95 thresholds per page (slo.yaml page_load),
// SUMMARY: where handleSummary writes the per-page figures as JSON.
import { browser } from 'k6/browser';
import { Rate, Trend } from 'k6/metrics';

const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:18000').replace(/\/$/, '');
const VUS = Number(__ENV.VUS || 1);
const ITERATIONS = Number(__ENV.ITERATIONS || 1);
const LOAD_MS = Number(__ENV.LOAD_MS || 2000);
const LCP_MS = Number(__ENV.LCP_MS || 2500);
export const PAGES = ['home', 'category', 'product', 'cart', 'checkout', 'order'];

const fcp = new Trend('storefront_fcp_ms', true);
const lcp = new Trend('storefront_lcp_ms', true);
const load = new Trend('storefront_load_ms', true);
// Success of whole journeys: a failed iteration still exits 0 in k6 browser, and
// `checks` passes when no check ran (browser.md), so this Rate must be 1.
const journeyOk = new Rate('storefront_journey_ok');

const thresholds = { storefront_journey_ok: ['rate==1.0'] };
for (const page of PAGES) {
  thresholds[`storefront_load_ms{page:${page}}`] = [`p(95)<${LOAD_MS}`];
  thresholds[`storefront_lcp_ms{page:${page}}`] = [`p(95)<${LCP_MS}`];
  thresholds[`storefront_fcp_ms{page:${page}}`] = [`p(95)<${LOAD_MS}`];
}

export const options = {
  scenarios: {
    storefront: {
      executor: 'shared-iterations',
      vus: VUS,
      iterations: ITERATIONS,
      maxDuration: __ENV.MAX_DURATION || '2m',
      options: { browser: { type: 'chromium' } },
    },
  },
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)', 'count'],
  thresholds,
};

// FCP, LCP and the load event of the page now shown, from the browser's own timings.
async function measure(page, name) {
  const timings = await page.evaluate(
    () =>
      new Promise((resolve) => {
        const done = (lcpValue) => {
          const nav = performance.getEntriesByType('navigation')[0];
          const paint = performance.getEntriesByName('first-contentful-paint')[0];
          resolve({
            load: nav ? nav.loadEventEnd : -1,
            fcp: paint ? paint.startTime : -1,
            lcp: lcpValue,
          });
        };
        const afterLoad = () => {
          let latest = -1;
          const observer = new PerformanceObserver((list) => {
            const entries = list.getEntries();
            latest = entries[entries.length - 1].startTime;
          });
          observer.observe({ type: 'largest-contentful-paint', buffered: true });
          // The first paint may come after the load event on a fast page, and buffered
          // entries arrive in a later task: wait for an entry (5 s at most), then a
          // little longer for a larger element painted next.
          const started = performance.now();
          const poll = () => {
            const painted = latest >= 0 && performance.getEntriesByName('first-contentful-paint').length;
            if (painted || performance.now() - started > 5000) {
              setTimeout(() => {
                observer.disconnect();
                done(latest);
              }, 50);
            } else {
              setTimeout(poll, 20);
            }
          };
          poll();
        };
        if (document.readyState === 'complete') setTimeout(afterLoad, 0);
        else window.addEventListener('load', () => setTimeout(afterLoad, 0));
      }),
  );
  if (timings.load <= 0 || timings.fcp < 0 || timings.lcp < 0) {
    throw new Error(`${name}: incomplete timings ${JSON.stringify(timings)}`);
  }
  const tags = { page: name };
  load.add(timings.load, tags);
  fcp.add(timings.fcp, tags);
  lcp.add(timings.lcp, tags);
}

async function expectPage(page, response, name, path) {
  const url = page.url();
  if (!url.startsWith(BASE_URL + path)) {
    throw new Error(`${name}: landed on ${url}, expected ${BASE_URL}${path}`);
  }
  if (response !== null && response !== undefined && response.status() >= 400) {
    throw new Error(`${name}: HTTP ${response.status()}`);
  }
  await measure(page, name);
}

async function clickAndWait(page, selector) {
  const [response] = await Promise.all([
    page.waitForNavigation({ waitUntil: 'load' }),
    page.locator(selector).click(),
  ]);
  return response;
}

export default async function () {
  const context = await browser.newContext();
  const page = await context.newPage();
  let ok = false;
  try {
    let response = await page.goto(`${BASE_URL}/`, { waitUntil: 'load' });
    await expectPage(page, response, 'home', '/');

    const categories = await page.$$('.categories li');
    const nth = 1 + Math.floor(Math.random() * categories.length);
    response = await clickAndWait(page, `.categories li:nth-child(${nth}) a`);
    await expectPage(page, response, 'category', '/categories/');

    // A product in stock: the listing says so next to each one.
    const links = await page.$$('.grid li');
    let target = null;
    for (const item of links) {
      const text = await item.textContent();
      if (text.includes('in stock') && !text.includes('out of stock')) {
        target = await item.$('a');
        break;
      }
    }
    if (target === null) throw new Error('category: no product in stock');
    response = await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), target.click()]);
    await expectPage(page, response[0], 'product', '/products/');

    response = await clickAndWait(page, '#add-to-cart');
    await expectPage(page, response, 'cart', '/cart');

    response = await clickAndWait(page, '#to-checkout');
    await expectPage(page, response, 'checkout', '/checkout');

    await page.locator('input[name="customer_id"]').fill(__ENV.CUSTOMER_ID || '1');
    response = await clickAndWait(page, '#place-order');
    await expectPage(page, response, 'order', '/orders/');

    const status = await page.locator('#order-status').textContent();
    if (status.trim() !== 'paid') throw new Error(`order: status ${status}, expected paid`);
    // The live feed (WebSocket through nginx) connects: order.js says so.
    await page.waitForFunction(() => document.getElementById('live').textContent === 'live', {
      timeout: 5000,
    });
    console.log(`storefront: order ${page.url().split('/').pop()} paid`);
    ok = true;
  } catch (error) {
    console.error(`storefront journey failed: ${error}`);
  } finally {
    journeyOk.add(ok);
    await page.close();
    await context.close();
  }
}

export function handleSummary(data) {
  const pages = {};
  for (const name of PAGES) {
    const figures = {};
    for (const [key, metric] of [
      ['fcp', 'storefront_fcp_ms'],
      ['lcp', 'storefront_lcp_ms'],
      ['load', 'storefront_load_ms'],
    ]) {
      const values = (data.metrics[`${metric}{page:${name}}`] || {}).values || {};
      figures[key] = { p95: values['p(95)'], med: values.med, max: values.max, count: values.count };
    }
    pages[name] = figures;
  }
  const journeys = (data.metrics.storefront_journey_ok || {}).values || {};
  const summary = {
    pages,
    journeys: { rate: journeys.rate, passes: journeys.passes, fails: journeys.fails },
    thresholds_ok: Object.values(data.metrics).every(
      (m) => !m.thresholds || Object.values(m.thresholds).every((t) => t.ok),
    ),
  };
  const out = { stdout: `${JSON.stringify(summary, null, 2)}\n` };
  if (__ENV.SUMMARY) out[__ENV.SUMMARY] = JSON.stringify(summary);
  return out;
}
