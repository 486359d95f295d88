// The full checkout flow through nginx, 50 VUs, no think time. Per iteration: one
// product (random, 1..PRODUCTS) into a fresh cart, then POST /api/checkout with a fresh
// Idempotency-Key. Orders/s = 201s per second. 402 (payment failed) and 409 (out of
// stock, in progress) are expected answers, counted apart; the harness tops stock up
// first so that 409s stay rare.
// Target: >= 500 orders/s, p99 < 200 ms.
import http from 'k6/http';
import { check } from 'k6';
import { Counter, Trend } from 'k6/metrics';
import {
  BASE_URL,
  CUSTOMERS,
  PRODUCTS,
  TREND_STATS,
  constantVus,
  randomInt,
  summaryOutputs,
  uniqueId,
  withTraffic,
} from './common.js';

const orders = new Counter('orders');
const paymentFailed = new Counter('payment_failed');
const conflicts = new Counter('conflicts');
const otherErrors = new Counter('other_errors');
const cartMs = new Trend('cart_duration', true);
const checkoutMs = new Trend('checkout_duration', true);
const flowMs = new Trend('flow_duration', true);

export const options = {
  scenarios: constantVus(Number(__ENV.VUS || 50)),
  summaryTrendStats: TREND_STATS,
  thresholds: {
    orders: ['rate>=500'],
    flow_duration: ['p(99)<200'],
  },
};

const JSON_HEADERS = { 'Content-Type': 'application/json' };
const CART_OK = http.expectedStatuses(200, 201, 204);
const CHECKOUT_ANSWERS = http.expectedStatuses(201, 402, 409);

export default function () {
  const cartId = uniqueId('bench');
  const productId = randomInt(1, PRODUCTS);
  const cart = http.put(
    `${BASE_URL}/api/carts/${cartId}/items/${productId}`,
    JSON.stringify({ quantity: 1 }),
    withTraffic({ headers: JSON_HEADERS, tags: { name: 'cart' }, responseCallback: CART_OK }),
  );
  cartMs.add(cart.timings.duration);
  if (!check(cart, { 'cart saved': (r) => r.status >= 200 && r.status < 300 })) {
    otherErrors.add(1);
    return;
  }
  const res = http.post(
    `${BASE_URL}/api/checkout`,
    JSON.stringify({
      cart_id: cartId,
      customer_id: randomInt(1, CUSTOMERS),
      payment_method: 'card',
    }),
    withTraffic({
      headers: { ...JSON_HEADERS, 'Idempotency-Key': uniqueId('key') },
      tags: { name: 'checkout' },
      responseCallback: CHECKOUT_ANSWERS,
    }),
  );
  checkoutMs.add(res.timings.duration);
  flowMs.add(cart.timings.duration + res.timings.duration);
  if (res.status === 201) {
    orders.add(1);
    check(res, { 'order paid': (r) => r.json('order.status') === 'paid' });
  } else if (res.status === 402) {
    paymentFailed.add(1);
  } else if (res.status === 409) {
    conflicts.add(1);
  } else {
    otherErrors.add(1);
  }
}

export function handleSummary(data) {
  const m = data.metrics;
  const rate = (name) => (m[name] ? m[name].values.rate.toFixed(1) : '0');
  return summaryOutputs(data, [
    `orders/s: ${rate('orders')} (402/s ${rate('payment_failed')}, 409/s ${rate('conflicts')},` +
      ` other errors/s ${rate('other_errors')})`,
    `flow p99: ${m.flow_duration ? m.flow_duration.values['p(99)'].toFixed(1) : '-'} ms`,
  ]);
}
