// Cache: reads of a small hot set of products (HOT, default 20) and the first catalogue
// pages, no think time: nginx's micro-cache and the shop's product cache should answer
// nearly everything (the harness judges the shop's hit ratio from Prometheus).
//   k6 run -e BASE_URL=http://127.0.0.1:18000 -e VUS=20 -e DURATION=30s cache.js
import { check, sleep } from 'k6';
import { Rate } from 'k6/metrics';
import { SLO_THRESHOLDS, TREND_STATS, constantVus, get, randomInt, summaryOutputs } from './lib/common.js';

const HOT = Number(__ENV.HOT || 20);
const microcacheHit = new Rate('microcache_hit');

export const options = {
  scenarios: constantVus(Number(__ENV.VUS || 20), __ENV.DURATION || '30s'),
  summaryTrendStats: TREND_STATS,
  discardResponseBodies: true,
  thresholds: SLO_THRESHOLDS,
};

export default function () {
  const res =
    Math.random() < 0.8
      ? get(`/api/products/${randomInt(1, HOT)}`, 'hot product')
      : get(`/api/products?limit=20&offset=${20 * randomInt(0, 2)}`, 'first pages');
  check(res, { '200': (r) => r.status === 200 });
  microcacheHit.add(res.headers['X-Cache-Status'] === 'HIT');
  sleep(0.01);
}

export function handleSummary(data) {
  const hit = data.metrics.microcache_hit;
  return summaryOutputs(data, [
    `nginx micro-cache hits: ${hit ? (hit.values.rate * 100).toFixed(1) : '-'}%`,
  ]);
}
