// Smoke: every public endpoint once per iteration, a couple of VUs, a few seconds. It
// proves the stack answers and the load-test tooling works, nothing about capacity.
//   k6 run -e BASE_URL=http://127.0.0.1:18000 -e VUS=2 -e DURATION=10s smoke.js
import { check, sleep } from 'k6';
import http from 'k6/http';
import {
  BASE_URL, PRODUCTS, SLO_THRESHOLDS, TREND_STATS, buy, constantVus, get, pick, randomInt,
  summaryOutputs, WORDS,
} from './lib/common.js';

export const options = {
  scenarios: constantVus(Number(__ENV.VUS || 2), __ENV.DURATION || '10s'),
  summaryTrendStats: TREND_STATS,
  thresholds: SLO_THRESHOLDS,
};

export default function () {
  check(get('/api/categories', 'categories'), { 'categories 200': (r) => r.status === 200 });
  check(get('/api/products?limit=20', 'list'), { 'list 200': (r) => r.status === 200 });
  check(get(`/api/products/${randomInt(1, PRODUCTS)}`, 'product'), { 'product 200': (r) => r.status === 200 });
  check(get(`/api/search?q=${pick(WORDS)}&limit=10`, 'search'), { 'search 200': (r) => r.status === 200 });
  const { res } = buy('smoke');
  if (res && res.status === 201) {
    const id = res.json('order.id');
    check(get(`/api/orders/${id}`, 'order'), { 'order 200': (r) => r.status === 200 });
  }
  sleep(0.2);
}

export function handleSummary(data) {
  return summaryOutputs(data);
}
