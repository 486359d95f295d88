// Performance: the SLO validation run. A fixed arrival rate (RATE iterations/s, at most
// VUS VUs) of a realistic mix: 80% one catalogue page (list, category, search or a
// product), 20% a purchase (cart + checkout). Thresholds: testing/k6/thresholds.json,
// generated from monitoring/slo.yaml; k6 exits 99 when one fails.
//   k6 run -e BASE_URL=http://127.0.0.1:18000 -e RATE=50 -e VUS=200 -e DURATION=120s performance.js
import { check } from 'k6';
import {
  PRODUCTS, SLO_THRESHOLDS, TREND_STATS, WORDS, buy, categories, constantRate, get, pick,
  randomInt, summaryOutputs,
} from './lib/common.js';

export const options = {
  scenarios: constantRate(Number(__ENV.RATE || 50), Number(__ENV.VUS || 200), __ENV.DURATION || '120s'),
  summaryTrendStats: TREND_STATS,
  thresholds: SLO_THRESHOLDS,
};

export function setup() {
  return { categories: categories() };
}

export default function (data) {
  const roll = Math.random();
  if (roll < 0.2) {
    const { res } = buy('perf');
    check(res, { 'checkout answered': (r) => r !== null && [201, 402, 409].includes(r.status) });
    return;
  }
  let res;
  if (roll < 0.5) res = get(`/api/products/${randomInt(1, PRODUCTS)}`, 'product');
  else if (roll < 0.65) res = get(`/api/products?limit=20&offset=${20 * randomInt(0, 9)}`, 'list');
  else if (roll < 0.8) res = get(`/api/products?category=${encodeURIComponent(pick(data.categories))}&limit=20`, 'category');
  else res = get(`/api/search?q=${pick(WORDS)}&limit=20`, 'search');
  check(res, { '200': (r) => r.status === 200 });
}

export function handleSummary(data) {
  return summaryOutputs(data);
}
