// A shopper browsing: categories, catalogue pages, a category, a search, product
// pages, with think time between pages (default 1-3 s; THINK_MIN / THINK_MAX).
//   k6 run -e BASE_URL=http://127.0.0.1:18000 -e VUS=50 -e DURATION=60s browsing.js
import { check } from 'k6';
import { Rate } from 'k6/metrics';
import {
  PRODUCTS, SLO_THRESHOLDS, TREND_STATS, WORDS, categories, constantVus, get, pick,
  randomInt, summaryOutputs, think,
} from './lib/common.js';

const microcacheHit = new Rate('microcache_hit');
const PAGES = 10;

export const options = {
  scenarios: constantVus(Number(__ENV.VUS || 50), __ENV.DURATION || '60s'),
  summaryTrendStats: TREND_STATS,
  thresholds: SLO_THRESHOLDS,
};

export function setup() {
  return { categories: categories() };
}

function page(path, name) {
  const res = get(path, name);
  check(res, { [`${name} 200`]: (r) => r.status === 200 });
  microcacheHit.add(res.headers['X-Cache-Status'] === 'HIT');
  think(1, 3);
}

export default function (data) {
  // Spread the VUs' first pages over the think time (no thundering start).
  if (__ITER === 0) think(0, Number(__ENV.THINK_MAX || 3));
  page('/api/categories', 'categories');
  page(`/api/products?limit=20&offset=${20 * randomInt(0, PAGES - 1)}`, 'list');
  page(`/api/products?category=${encodeURIComponent(pick(data.categories))}&limit=20`, 'category');
  page(`/api/search?q=${pick(WORDS)}&limit=20`, 'search');
  for (let i = 0; i < 3; i++) page(`/api/products/${randomInt(1, PRODUCTS)}`, 'product');
}

export function handleSummary(data) {
  const hit = data.metrics.microcache_hit;
  return summaryOutputs(data, [
    `nginx micro-cache hits: ${hit ? (hit.values.rate * 100).toFixed(1) : '-'}%`,
  ]);
}
