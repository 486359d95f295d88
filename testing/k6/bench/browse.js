// A shopper browsing: category list, catalogue pages, a category, a search, product
// pages, with a short think time between pages. The harness reads the shop's cache
// hit ratio from /metrics before and after (target >= 95%).
import http from 'k6/http';
import { check, sleep } from 'k6';
import { Rate } from 'k6/metrics';
import {
  BASE_URL,
  PRODUCTS,
  TREND_STATS,
  constantVus,
  pick,
  randomInt,
  summaryOutputs,
  withTraffic,
} from './common.js';

const THINK_MIN = Number(__ENV.THINK_MIN || 0.05);
const THINK_MAX = Number(__ENV.THINK_MAX || 0.15);
// The seeded catalogue's categories and words (stack/shop/ocean_shop/seed.py); the
// categories are replaced by what /api/categories answers when it answers.
const SEED_CATEGORIES = ['diving', 'sailing', 'fishing', 'navigation', 'safety', 'apparel'];
const WORDS = ['mask', 'fin', 'line', 'compass', 'buoy', 'jacket', 'lantern', 'rope', 'net',
  'tidal', 'coral', 'reef', 'harbor', 'storm'];
const PAGES = 10;

const microcacheHit = new Rate('microcache_hit');
const pageOk = new Rate('page_ok');

export const options = {
  scenarios: constantVus(),
  summaryTrendStats: TREND_STATS,
  thresholds: { http_req_failed: ['rate<0.001'] },
};

export function setup() {
  const res = http.get(`${BASE_URL}/api/categories`, withTraffic());
  let categories = SEED_CATEGORIES;
  if (res.status === 200) {
    const body = res.json();
    const items = Array.isArray(body) ? body : body.items || body.categories || [];
    const names = items.map((c) => (typeof c === 'string' ? c : c.name)).filter(Boolean);
    if (names.length) categories = names;
  }
  return { categories };
}

function page(url, name) {
  const res = http.get(url, withTraffic({ tags: { name } }));
  const ok = check(res, { [`${name} 200`]: (r) => r.status === 200 });
  pageOk.add(ok);
  microcacheHit.add(res.headers['X-Cache-Status'] === 'HIT');
  sleep(THINK_MIN + Math.random() * (THINK_MAX - THINK_MIN));
  return res;
}

export default function (data) {
  page(`${BASE_URL}/api/categories`, 'categories');
  page(`${BASE_URL}/api/products?limit=20&offset=${20 * randomInt(0, PAGES - 1)}`, 'list');
  page(
    `${BASE_URL}/api/products?category=${encodeURIComponent(pick(data.categories))}` +
      `&limit=20&offset=${20 * randomInt(0, 2)}`,
    'category',
  );
  page(`${BASE_URL}/api/search?q=${pick(WORDS)}&limit=20`, 'search');
  for (let i = 0; i < 3; i++) {
    page(`${BASE_URL}/api/products/${randomInt(1, PRODUCTS)}`, 'product');
  }
}

export function handleSummary(data) {
  const hit = data.metrics.microcache_hit;
  return summaryOutputs(data, [
    `nginx micro-cache hits: ${hit ? (hit.values.rate * 100).toFixed(1) : '-'}%`,
  ]);
}
