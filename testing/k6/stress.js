// Stress: the arrival rate steps up in LEVELS levels from RATE/LEVELS to RATE
// iterations/s (one catalogue request each: 70% product, 20% list, 10% search), each
// level held DURATION/LEVELS. Requests are tagged level=N, and a threshold per level
// makes k6's summary report each level's p99, error rate and count: the harness finds
// the highest level where p99 and errors held (the breaking point) from those.
//   k6 run -e BASE_URL=http://127.0.0.1:18000 -e RATE=800 -e VUS=400 -e DURATION=80s stress.js
import exec from 'k6/execution';
import http from 'k6/http';
import {
  BASE_URL, PRODUCTS, READ_OK, SLO_THRESHOLDS, TREND_STATS, WORDS, pick, randomInt, summaryOutputs,
  withTraffic,
} from './lib/common.js';

const RATE = Number(__ENV.RATE || 800);
const LEVELS = Number(__ENV.LEVELS || 8);
const MAX_VUS = Number(__ENV.VUS || 400);
const TOTAL_S = parseFloat(__ENV.DURATION || '80s');
const HOLD_S = Math.max(2, Math.floor(TOTAL_S / LEVELS));
const RATES = Array.from({ length: LEVELS }, (_, i) => Math.max(1, Math.round((RATE * (i + 1)) / LEVELS)));

const thresholds = {};
RATES.forEach((_, i) => {
  thresholds[`http_req_duration{level:${i}}`] = SLO_THRESHOLDS.http_req_duration;
  thresholds[`http_req_failed{level:${i}}`] = SLO_THRESHOLDS.http_req_failed;
  thresholds[`http_reqs{level:${i}}`] = ['count>=0'];
});

export const options = {
  scenarios: {
    main: {
      executor: 'ramping-arrival-rate',
      startRate: RATES[0],
      timeUnit: '1s',
      preAllocatedVUs: Math.min(MAX_VUS, 50),
      maxVUs: MAX_VUS,
      // Each level: 1 s to reach its rate, then held; it stops by itself.
      stages: RATES.flatMap((r) => [{ target: r, duration: '1s' }, { target: r, duration: `${HOLD_S - 1}s` }]),
      gracefulStop: '5s',
    },
  },
  summaryTrendStats: TREND_STATS,
  discardResponseBodies: true,
  thresholds,
};

export default function () {
  const elapsed = exec.instance.currentTestRunDuration / 1000;
  const level = String(Math.min(LEVELS - 1, Math.floor(elapsed / HOLD_S)));
  const roll = Math.random();
  let path = `/api/products/${randomInt(1, PRODUCTS)}`;
  let name = 'product';
  if (roll > 0.9) {
    path = `/api/search?q=${pick(WORDS)}&limit=10`;
    name = 'search';
  } else if (roll > 0.7) {
    path = `/api/products?limit=20&offset=${20 * randomInt(0, 9)}`;
    name = 'list';
  }
  http.get(`${BASE_URL}${path}`, withTraffic({ tags: { name, level }, responseCallback: READ_OK }));
}

export function handleSummary(data) {
  const lines = RATES.map((r, i) => {
    const d = data.metrics[`http_req_duration{level:${i}}`];
    const n = data.metrics[`http_reqs{level:${i}}`];
    const p99 = d && d.values['p(99)'] !== undefined ? d.values['p(99)'].toFixed(1) : '-';
    return `level ${i}: ${r}/s target, ${n ? (n.values.count / HOLD_S).toFixed(0) : 0}/s done, p99 ${p99} ms`;
  });
  // What each level should have sent: its rate for HOLD_S, less half the 1 s ramp from
  // the level below.
  const levels = RATES.map((rate, i) => ({
    rate,
    seconds: HOLD_S,
    expected: rate * HOLD_S - (rate - (i ? RATES[i - 1] : rate)) / 2,
  }));
  return summaryOutputs(data, lines, { levels });
}
