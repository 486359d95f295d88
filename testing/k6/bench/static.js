// The ceiling: nginx answering `return 200` itself (on its status port), with the
// same VUs as product_read.js. BASE_URL is nginx's status listener here.
import http from 'k6/http';
import { check } from 'k6';
import { BASE_URL, TREND_STATS, constantVus, summaryOutputs } from './common.js';

export const options = {
  scenarios: constantVus(),
  summaryTrendStats: TREND_STATS,
  discardResponseBodies: true,
};

export default function () {
  const res = http.get(`${BASE_URL}/__static_baseline`);
  check(res, { 'status 200': (r) => r.status === 200 });
}

export function handleSummary(data) {
  return summaryOutputs(data);
}
