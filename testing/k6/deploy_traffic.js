// Steady shop traffic through nginx while deploys switch colors (tests/integration/
// test_deploy.py, tests/bench/deploy.py). Every request must succeed: http_req_failed
// counts any error or non-2xx answer. Requests that reach the shop are the point, so
// most of the mix bypasses nginx's micro-cache (carts, searches with random words),
// and /version counts which color answered, to prove traffic really moved.
//
// Connection reuse across a reload: nginx's old workers close their idle keep-alive
// connections when they retire, and a request sent on one at that instant meets EOF.
// Clients retry that case: browsers for any method, Go (k6) for idempotent requests
// only, which for Go means GET/HEAD or a request with an Idempotency-Key header. The
// cart PUT is idempotent (it sets a quantity), so it says so; the shop ignores the
// header there.
//
// Bounded: constant VUs for DURATION (stops by itself); the harness may stop it
// earlier with SIGINT, and the summary is still written.
import http from 'k6/http';
import { check } from 'k6';
import { Counter } from 'k6/metrics';
import {
  BASE_URL,
  TREND_STATS,
  constantVus,
  randomInt,
  summaryOutputs,
  uniqueId,
  withTraffic,
} from './bench/common.js';

const PRODUCTS = Number(__ENV.PRODUCTS || 100);
const WORDS = ['mask', 'fin', 'line', 'compass', 'buoy', 'jacket', 'lantern', 'rope', 'net'];
const servedBlue = new Counter('served_blue');
const servedGreen = new Counter('served_green');

export const options = {
  scenarios: constantVus(),
  summaryTrendStats: TREND_STATS,
  thresholds: { http_req_failed: ['rate==0'] },
};

function ok(res, name) {
  check(res, { [`${name} 2xx`]: (r) => r.status >= 200 && r.status < 300 });
  return res;
}

export default function () {
  const cart = uniqueId('deploy');
  const product = randomInt(1, PRODUCTS);
  ok(http.get(`${BASE_URL}/api/products/${product}`, withTraffic({ tags: { name: 'product' } })), 'product');
  ok(
    http.put(
      `${BASE_URL}/api/carts/${cart}/items/${product}`,
      JSON.stringify({ quantity: 1 }),
      withTraffic({
        headers: { 'Content-Type': 'application/json', 'Idempotency-Key': `${cart}-${product}` },
        tags: { name: 'cart add' },
      }),
    ),
    'cart add',
  );
  ok(http.get(`${BASE_URL}/api/carts/${cart}`, withTraffic({ tags: { name: 'cart read' } })), 'cart read');
  const word = WORDS[randomInt(0, WORDS.length - 1)];
  ok(http.get(`${BASE_URL}/api/search?q=${word}&limit=5`, withTraffic({ tags: { name: 'search' } })), 'search');
  const version = ok(http.get(`${BASE_URL}/version`, withTraffic({ tags: { name: 'version' } })), 'version');
  if (version.status === 200) {
    const color = version.json('color');
    if (color === 'blue') servedBlue.add(1);
    if (color === 'green') servedGreen.add(1);
  }
}

export function handleSummary(data) {
  const count = (name) => (data.metrics[name] ? data.metrics[name].values.count : 0);
  return summaryOutputs(data, [`served: blue ${count('served_blue')}, green ${count('served_green')}`]);
}
