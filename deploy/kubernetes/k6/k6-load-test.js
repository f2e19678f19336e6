// The seed's k6 scenario: ramp to 50, then 100 virtual users, hold 100 for
// three minutes, ramp down; every user asks for its own client's data.
//
//   k6 run k6-load-test.js                                  # full run, 5 min
//   BASE_URL=http://host:3000 STAGE_SCALE=0.1 k6 run k6-load-test.js   # 30 s
//
// BASE_URL:    the server (default http://localhost:3000).
// STAGE_SCALE: multiplies every stage's duration (default 1): 0.1 keeps the
//              shape and the thresholds at a tenth of the time, for CI.
// A failed threshold makes `k6 run` exit 99.
import http from 'k6/http';
import { check, sleep } from 'k6';
import { Rate } from 'k6/metrics';

const BASE_URL = (__ENV.BASE_URL || 'http://localhost:3000').replace(/\/+$/, '');
const STAGE_SCALE = Number(__ENV.STAGE_SCALE || '1');
if (!(STAGE_SCALE > 0)) {
  throw new Error(`STAGE_SCALE must be a positive number, got "${__ENV.STAGE_SCALE}"`);
}

// A stage length in whole seconds (at least one), scaled.
function scaled(seconds) {
  return `${Math.max(1, Math.round(seconds * STAGE_SCALE))}s`;
}

// Requests that failed: a transport error, a status other than 200, or a
// response slower than the 200 ms budget.
const errors = new Rate('errors');

export const options = {
  stages: [
    { duration: scaled(30), target: 50 },
    { duration: scaled(60), target: 100 },
    { duration: scaled(180), target: 100 },
    { duration: scaled(30), target: 0 },
  ],
  thresholds: {
    http_req_duration: ['p(95)<200', 'p(99)<500'],
    errors: ['rate<0.001'],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'],
};

export default function () {
  const res = http.get(`${BASE_URL}/api/data/client-${__VU}`);
  const ok = check(res, {
    'status is 200': (r) => r.status === 200,
    'response time < 200ms': (r) => r.timings.duration < 200,
  });
  errors.add(!ok);
  sleep(0.1);
}
