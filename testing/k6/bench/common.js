// Shared by the shop benchmarks (run by tests/bench/shop.py; see docs/benchmarks.md).
// Everything comes from -e KEY=value so the harness can point a script at its own stack.

export const BASE_URL = __ENV.BASE_URL || 'http://127.0.0.1:18000';
export const VUS = Number(__ENV.VUS || 100);
export const DURATION = __ENV.DURATION || '20s';
export const PRODUCTS = Number(__ENV.PRODUCTS || 1000);
export const CUSTOMERS = Number(__ENV.CUSTOMERS || 100);

// One scenario of constant VUs for a fixed time: every run stops by itself.
export function constantVus(vus = VUS, duration = DURATION) {
  return {
    main: { executor: 'constant-vus', vus, duration, gracefulStop: '5s' },
  };
}

// p(99) is not in k6's default trend stats.
export const TREND_STATS = ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'];

export function randomInt(min, max) {
  return min + Math.floor(Math.random() * (max - min + 1));
}

export function pick(items) {
  return items[Math.floor(Math.random() * items.length)];
}

// A client-chosen id matching [A-Za-z0-9_-]{8,64}: unique per VU and iteration, with
// random hex so that two runs against one stack never collide.
export function uniqueId(prefix) {
  let hex = '';
  for (let i = 0; i < 4; i++) {
    hex += Math.floor(Math.random() * 0x100000000).toString(16).padStart(8, '0');
  }
  return `${prefix}-${__VU}-${__ITER}-${hex}`.slice(0, 64);
}

// The full k6 summary as JSON to SUMMARY_JSON (the harness reads it), and a few lines
// on stdout for a person running a script by hand.
export function summaryOutputs(data, extraLines = []) {
  const out = {};
  if (__ENV.SUMMARY_JSON) {
    out[__ENV.SUMMARY_JSON] = JSON.stringify(data, null, 2);
  }
  const reqs = data.metrics.http_reqs;
  const dur = data.metrics.http_req_duration;
  const failed = data.metrics.http_req_failed;
  const lines = [
    `requests: ${reqs ? reqs.values.count : 0} (${reqs ? reqs.values.rate.toFixed(1) : 0}/s)`,
    dur
      ? `http_req_duration: med ${dur.values.med.toFixed(2)} ms, p99 ${dur.values['p(99)'].toFixed(2)} ms`
      : 'http_req_duration: -',
    `failed: ${failed ? (failed.values.rate * 100).toFixed(2) : 0}%`,
    ...extraLines,
  ];
  out.stdout = lines.join('\n') + '\n';
  return out;
}
