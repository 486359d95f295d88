// Shared by every k6 script here: the load-test scenarios (testing/k6/*.js, run by
// `invoke loadtest`), the shop benchmarks (bench/, run by tests/bench/shop.py) and the
// deploy traffic. Everything comes from -e KEY=value so a harness can point a script
// at its own stack; the defaults suit `./ocean up` on the default port base.
import http from 'k6/http';
import { sleep } from 'k6';

export const BASE_URL = (__ENV.BASE_URL || 'https://127.0.0.1:18000').replace(/\/$/, '');
export const WS_URL = BASE_URL.replace(/^http/, 'ws');
export const VUS = Number(__ENV.VUS || 100);
export const DURATION = __ENV.DURATION || '20s';
export const PRODUCTS = Number(__ENV.PRODUCTS || 1000);
export const CUSTOMERS = Number(__ENV.CUSTOMERS || 100);

// The stack's traffic token (the harness passes OCEAN_TRAFFIC_TOKEN, ocean/access.py):
// nginx does not rate-limit requests that carry it, so a load test measures the shop,
// not the limiter. TLS: k6 trusts the stack's CA through SSL_CERT_FILE.
export const TRAFFIC_HEADERS = __ENV.OCEAN_TRAFFIC_TOKEN
  ? { 'X-Ocean-Traffic': __ENV.OCEAN_TRAFFIC_TOKEN }
  : {};
// ``params`` with the traffic token added to its headers.
export function withTraffic(params = {}) {
  return { ...params, headers: { ...TRAFFIC_HEADERS, ...(params.headers || {}) } };
}

// The SLO thresholds, generated from monitoring/slo.yaml (never typed here).
export const SLO = JSON.parse(open('../thresholds.json'));
export const SLO_THRESHOLDS = SLO.thresholds;

// The seeded catalogue's categories and words (stack/shop/ocean_shop/seed.py).
export const SEED_CATEGORIES = ['diving', 'sailing', 'fishing', 'navigation', 'safety', 'apparel'];
export const WORDS = ['mask', 'fin', 'line', 'compass', 'buoy', 'jacket', 'lantern', 'rope',
  'net', 'tidal', 'coral', 'reef', 'harbor', 'storm'];

// Statuses the shop answers on purpose: only the rest count as failed requests.
export const JSON_HEADERS = { 'Content-Type': 'application/json' };
export const READ_OK = http.expectedStatuses(200);
export const CART_OK = http.expectedStatuses(200, 201, 204);
export const CHECKOUT_ANSWERS = http.expectedStatuses(201, 402, 409);

// One scenario of constant VUs for a fixed time: every run stops by itself.
export function constantVus(vus = VUS, duration = DURATION) {
  return {
    main: { executor: 'constant-vus', vus, duration, gracefulStop: '5s' },
  };
}

// A fixed arrival rate (iterations/s) for a fixed time, at most maxVUs VUs.
export function constantRate(rate, maxVUs = VUS, duration = DURATION) {
  return {
    main: {
      executor: 'constant-arrival-rate',
      rate,
      timeUnit: '1s',
      duration,
      preAllocatedVUs: Math.min(maxVUs, Math.max(1, Math.ceil(rate / 4))),
      maxVUs,
      gracefulStop: '5s',
    },
  };
}

// p(99) is not in k6's default trend stats.
export const TREND_STATS = ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'];

export function randomInt(min, max) {
  return min + Math.floor(Math.random() * (max - min + 1));
}

export function pick(items) {
  return items[Math.floor(Math.random() * items.length)];
}

// Think time between pages, seconds in [THINK_MIN, THINK_MAX] (defaults given per script).
export function think(min, max) {
  const lo = Number(__ENV.THINK_MIN || min);
  const hi = Number(__ENV.THINK_MAX || max);
  sleep(lo + Math.random() * (hi - lo));
}

// A client-chosen id matching [A-Za-z0-9_-]{8,64}: unique per VU and iteration, with
// random hex so that two runs against one stack never collide (setup() has no __ITER).
export function uniqueId(prefix) {
  const iter = typeof __ITER === 'undefined' ? 0 : __ITER;
  let hex = '';
  for (let i = 0; i < 4; i++) {
    hex += Math.floor(Math.random() * 0x100000000).toString(16).padStart(8, '0');
  }
  return `${prefix}-${__VU}-${iter}-${hex}`.slice(0, 64);
}

export function get(path, name) {
  return http.get(`${BASE_URL}${path}`, withTraffic({ tags: { name }, responseCallback: READ_OK }));
}

// The categories the shop answers (else the seed's), for setup().
export function categories() {
  const res = http.get(`${BASE_URL}/api/categories`, withTraffic({ tags: { name: 'categories' } }));
  if (res.status === 200) {
    const body = res.json();
    const items = Array.isArray(body) ? body : body.items || body.categories || [];
    const names = items.map((c) => (typeof c === 'string' ? c : c.name)).filter(Boolean);
    if (names.length) return names;
  }
  return SEED_CATEGORIES;
}

// Put one product in a fresh cart and check out: the response (201 paid, 402, 409).
export function buy(prefix = 'lt') {
  const cartId = uniqueId(prefix);
  const productId = randomInt(1, PRODUCTS);
  const cart = http.put(
    `${BASE_URL}/api/carts/${cartId}/items/${productId}`,
    JSON.stringify({ quantity: 1 }),
    withTraffic({ headers: JSON_HEADERS, tags: { name: 'cart' }, responseCallback: CART_OK }),
  );
  if (cart.status >= 300) return { cart, res: null };
  const res = http.post(
    `${BASE_URL}/api/checkout`,
    JSON.stringify({ cart_id: cartId, customer_id: randomInt(1, CUSTOMERS), payment_method: 'card' }),
    withTraffic({
      headers: { ...JSON_HEADERS, 'Idempotency-Key': uniqueId('key') },
      tags: { name: 'checkout' },
      responseCallback: CHECKOUT_ANSWERS,
    }),
  );
  return { cart, res };
}

// The full k6 summary as JSON to SUMMARY_JSON (the harness reads it), with `extra`
// under "ocean", and a few lines on stdout for a person running a script by hand.
export function summaryOutputs(data, extraLines = [], extra = null) {
  const out = {};
  if (__ENV.SUMMARY_JSON) {
    out[__ENV.SUMMARY_JSON] = JSON.stringify(extra ? { ...data, ocean: extra } : data, null, 2);
  }
  const reqs = data.metrics.http_reqs;
  const dur = data.metrics.http_req_duration;
  const failed = data.metrics.http_req_failed;
  const lines = [
    `requests: ${reqs ? reqs.values.count : 0} (${reqs ? reqs.values.rate.toFixed(1) : 0}/s)`,
    dur
      ? `http_req_duration: med ${dur.values.med.toFixed(2)} ms, p99 ${dur.values['p(99)'].toFixed(2)} ms`
      : 'http_req_duration: -',
    `failed: ${failed ? (failed.values.rate * 100).toFixed(2) : 0}%`,
    ...extraLines,
  ];
  out.stdout = lines.join('\n') + '\n';
  return out;
}
