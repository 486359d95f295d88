// The benchmarks' helpers live in ../lib/common.js, shared with the load-test scenarios.
export * from '../lib/common.js';
