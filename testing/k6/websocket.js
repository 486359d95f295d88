// WebSocket: many open order feeds. setup() places one order; every VU then keeps a
// feed of it open (/ws/orders/{id}) for HOLD seconds (default 5), reconnecting until
// the run ends. Measures connection time and the first message (the order document).
//   k6 run -e BASE_URL=http://127.0.0.1:18000 -e VUS=100 -e DURATION=30s websocket.js
import { check } from 'k6';
import { Counter, Trend } from 'k6/metrics';
import ws from 'k6/ws';
import { TREND_STATS, WS_URL, buy, constantVus, summaryOutputs, withTraffic } from './lib/common.js';

const HOLD_MS = 1000 * Number(__ENV.HOLD || 5);
const firstMessage = new Trend('ws_first_message', true);
const feeds = new Counter('ws_feeds');

export const options = {
  scenarios: constantVus(Number(__ENV.VUS || 100), __ENV.DURATION || '30s'),
  summaryTrendStats: TREND_STATS,
  thresholds: { ws_first_message: ['p(99)<1000'] },
};

export function setup() {
  for (let i = 0; i < 5; i++) {
    const { res } = buy('wsfeed');
    if (res && res.status === 201) return { order: res.json('order.id') };
  }
  return { order: Number(__ENV.ORDER || 1) };
}

export default function (data) {
  const opened = Date.now();
  let first = true;
  const res = ws.connect(`${WS_URL}/ws/orders/${data.order}`, withTraffic({ tags: { name: 'order feed' } }), (socket) => {
    socket.on('open', () => feeds.add(1));
    socket.on('message', () => {
      if (first) firstMessage.add(Date.now() - opened);
      first = false;
    });
    socket.setTimeout(() => socket.close(), HOLD_MS);
  });
  check(res, { 'feed 101': (r) => r && r.status === 101 });
}

export function handleSummary(data) {
  const f = data.metrics.ws_feeds;
  return summaryOutputs(data, [`feeds opened: ${f ? f.values.count : 0}`]);
}
