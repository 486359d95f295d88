// Database: requests that reach PostgreSQL. Full-text searches with two random words,
// deep catalogue pages, a customer's orders and single orders (none cached by nginx:
// each URL is rare). Short think time.
//   k6 run -e BASE_URL=http://127.0.0.1:18000 -e VUS=10 -e DURATION=30s database.js
import { check } from 'k6';
import {
  CUSTOMERS, SLO_THRESHOLDS, TREND_STATS, WORDS, constantVus, get, pick, randomInt,
  summaryOutputs, think,
} from './lib/common.js';

const ORDERS = Number(__ENV.ORDERS || 100);

export const options = {
  scenarios: constantVus(Number(__ENV.VUS || 10), __ENV.DURATION || '30s'),
  summaryTrendStats: TREND_STATS,
  thresholds: SLO_THRESHOLDS,
};

export default function () {
  const ok = { '200': (r) => r.status === 200 };
  check(get(`/api/search?q=${pick(WORDS)}+${pick(WORDS)}&limit=20&offset=${randomInt(0, 40)}`, 'search'), ok);
  check(get(`/api/products?limit=50&offset=${randomInt(0, 900)}`, 'deep page'), ok);
  check(get(`/api/customers/${randomInt(1, CUSTOMERS)}/orders?limit=10`, 'customer orders'), ok);
  const order = get(`/api/orders/${randomInt(1, ORDERS)}`, 'order');
  check(order, { 'order 200/404': (r) => r.status === 200 || r.status === 404 });
  think(0.05, 0.2);
}

export function handleSummary(data) {
  return summaryOutputs(data);
}
