// Shoppers on the storefront, as people use it (issue 22): one iteration is one visit.
// A visit lands on the home page (with its stylesheet, once: a browser caches it), then
// a category or a search, then one to three product pages, with 5-15 s of reading
// between pages. A share of visits puts a product in the cart, and a share of those
// checks out through the storefront's own forms (cookie cart, the form's idempotency key).
//
// The shares, and where they come from:
//   ADD_TO_CART = 7 % of visits: the global average add-to-cart rate of online shops
//     (7.1 %, fero.com "Breaking down your conversion rate", citing Shopify data).
//   CHECKOUT = 30 % of carts: about 70 % of carts are abandoned (Baymard Institute's
//     average of 49 studies, 70.19 %), so ≈ 2.1 % of visits order, the usual range of
//     shop conversion rates (2-3 %).
//   Think time 5-15 s between page views: the shopper (a page read, a choice).
// Each may be overridden: -e ADD_TO_CART=0.07 -e CHECKOUT=0.3 -e THINK_MIN=5 -e THINK_MAX=15.
//
// Lean on purpose, for many VUs on one box: response bodies are discarded except the
// two the visit reads (the home page for its stylesheet's name, the checkout form for
// its idempotency key), and the data every VU shares is built once per k6 instance.
//   k6 run -e BASE_URL=https://127.0.0.1:18000 -e VUS=1000 -e DURATION=10m shoppers.js
import http from 'k6/http';
import { check } from 'k6';
import { Counter } from 'k6/metrics';
import {
  BASE_URL, PRODUCTS, SLO_THRESHOLDS, TREND_STATS, WORDS, constantVus, pick, randomInt,
  summaryOutputs, think, withTraffic,
} from './lib/common.js';

const ADD_TO_CART = Number(__ENV.ADD_TO_CART || 0.07);
const CHECKOUT = Number(__ENV.CHECKOUT || 0.3);
const PAGE_OK = http.expectedStatuses(200);
// A form answers 303 (k6 follows it to the page), or 409 (out of stock, cart full) and
// 422 (the form refused) with the form again: answers a shopper reads, not failures.
const FORM_ANSWERS = http.expectedStatuses(200, 303, 409, 422);
const CATEGORIES = ['diving', 'sailing', 'fishing', 'navigation', 'safety', 'apparel'];

const visits = new Counter('visits');
const carts = new Counter('carts');
const orders = new Counter('orders');

export const options = {
  scenarios: constantVus(Number(__ENV.VUS || 100), __ENV.DURATION || '60s'),
  summaryTrendStats: TREND_STATS,
  thresholds: SLO_THRESHOLDS,
  discardResponseBodies: true,
};

function page(path, name, extra = {}) {
  const res = http.get(`${BASE_URL}${path}`, withTraffic({
    tags: { name }, responseCallback: PAGE_OK, ...extra,
  }));
  check(res, { [`${name} 200`]: (r) => r.status === 200 });
  return res;
}

function addToCart() {
  const res = http.post(
    `${BASE_URL}/cart/items`,
    { product_id: String(randomInt(1, PRODUCTS)), quantity: '1' },
    withTraffic({ tags: { name: 'add to cart' }, responseCallback: FORM_ANSWERS }),
  );
  // 303 to /cart, followed: the cart page.
  const ok = check(res, { 'cart page': (r) => r.status === 200 && r.url.endsWith('/cart') });
  if (ok) carts.add(1);
  return ok;
}

function checkOut() {
  const form = page('/checkout', 'checkout form', { responseType: 'text' });
  const key = form.status === 200 && form.body
    ? (form.body.match(/name="idempotency_key" value="(\w+)"/) || [])[1]
    : undefined;
  if (!check(key, { 'checkout form has its key': (k) => Boolean(k) })) return;
  const res = http.post(
    `${BASE_URL}/checkout`,
    { idempotency_key: key, customer_id: String(randomInt(1, 100)), payment_method: 'card' },
    withTraffic({ tags: { name: 'checkout' }, responseCallback: FORM_ANSWERS }),
  );
  // Paid or payment failed: 303 to the order's page, followed. Out of stock: the form, 409.
  if (res.status === 200 && res.url.includes('/orders/')) orders.add(1);
  check(res, { 'checkout answered': (r) => r.status === 200 || r.status === 409 });
}

export default function () {
  // Spread the VUs' first visits over a think time (no thundering start).
  if (__ITER === 0) think(0, Number(__ENV.THINK_MAX || 15));
  http.cookieJar().clear(BASE_URL); // a new visit: no cart from the last one
  visits.add(1);
  const home = page('/', 'home', { responseType: 'text' });
  const css = home.body ? (home.body.match(/href="(\/static\/[^"]+\.css)"/) || [])[1] : undefined;
  if (css) page(css, 'stylesheet');
  think(5, 15);
  if (Math.random() < 0.5) page(`/categories/${pick(CATEGORIES)}`, 'category');
  else page(`/search?q=${pick(WORDS)}`, 'search');
  const products = randomInt(1, 3);
  for (let i = 0; i < products; i++) {
    think(5, 15);
    page(`/products/${randomInt(1, PRODUCTS)}`, 'product');
  }
  if (Math.random() >= ADD_TO_CART) return;
  think(5, 15);
  if (!addToCart() || Math.random() >= CHECKOUT) return;
  think(5, 15);
  checkOut();
}

export function handleSummary(data) {
  const count = (name) => (data.metrics[name] ? data.metrics[name].values.count : 0);
  return summaryOutputs(data, [
    `visits: ${count('visits')}, carts: ${count('carts')}, orders: ${count('orders')}`,
  ]);
}
