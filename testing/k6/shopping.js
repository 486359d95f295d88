// A shopper buying: a product page, the product into a cart, checkout (fresh
// Idempotency-Key), then the order's status over its WebSocket feed (/ws/orders/{id}:
// the order document first). 402 (payment failed) and 409 (out of stock) are answers,
// not failures. Think time 0.5-1.5 s between steps.
//   k6 run -e BASE_URL=http://127.0.0.1:18000 -e VUS=10 -e DURATION=60s shopping.js
import { check } from 'k6';
import { Counter, Trend } from 'k6/metrics';
import ws from 'k6/ws';
import {
  PRODUCTS, SLO_THRESHOLDS, TREND_STATS, WS_URL, buy, constantVus, get, randomInt,
  summaryOutputs, think,
  withTraffic,
} from './lib/common.js';

const orders = new Counter('orders');
const feedMs = new Trend('order_feed_first_message', true);

export const options = {
  scenarios: constantVus(Number(__ENV.VUS || 10), __ENV.DURATION || '60s'),
  summaryTrendStats: TREND_STATS,
  thresholds: SLO_THRESHOLDS,
};

export default function () {
  get(`/api/products/${randomInt(1, PRODUCTS)}`, 'product');
  think(0.5, 1.5);
  const { res } = buy('shop');
  if (!res || res.status !== 201) return;
  orders.add(1);
  const id = res.json('order.id');
  const opened = Date.now();
  const answer = ws.connect(`${WS_URL}/ws/orders/${id}`, withTraffic({ tags: { name: 'order feed' } }), (socket) => {
    socket.on('message', (msg) => {
      feedMs.add(Date.now() - opened);
      check(msg, { 'feed names the order': (m) => JSON.parse(m).id === id || m.includes(`${id}`) });
      socket.close();
    });
    socket.setTimeout(() => socket.close(), 3000);
  });
  check(answer, { 'feed 101': (r) => r && r.status === 101 });
  think(0.5, 1.5);
}

export function handleSummary(data) {
  const o = data.metrics.orders;
  return summaryOutputs(data, [`orders: ${o ? o.values.count : 0}`]);
}
