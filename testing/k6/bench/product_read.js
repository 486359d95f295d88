// Cached product reads through nginx: random ids 1..PRODUCTS, 100 VUs, no think time.
// Target: >= 25% of static.js's request rate in the same run, p99 < 50 ms.
import http from 'k6/http';
import { check } from 'k6';
import { Rate } from 'k6/metrics';
import {
  BASE_URL,
  PRODUCTS,
  TREND_STATS,
  constantVus,
  randomInt,
  summaryOutputs,
  withTraffic,
} from './common.js';

// Share of responses nginx's micro-cache answered (X-Cache-Status: HIT).
const microcacheHit = new Rate('microcache_hit');

export const options = {
  scenarios: constantVus(),
  summaryTrendStats: TREND_STATS,
  discardResponseBodies: true,
  thresholds: {
    http_req_failed: ['rate<0.001'],
    http_req_duration: ['p(99)<50'],
  },
};

export default function () {
  const res = http.get(
    `${BASE_URL}/api/products/${randomInt(1, PRODUCTS)}`,
    withTraffic({ tags: { name: 'product' } }),
  );
  check(res, { 'status 200': (r) => r.status === 200 });
  microcacheHit.add(res.headers['X-Cache-Status'] === 'HIT');
}

export function handleSummary(data) {
  const hit = data.metrics.microcache_hit;
  return summaryOutputs(data, [
    `nginx micro-cache hits: ${hit ? (hit.values.rate * 100).toFixed(1) : '-'}%`,
  ]);
}
