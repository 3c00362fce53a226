import { parseWrk } from '../../bench/load-generator';
import { atLeast, atMost, formatTable, reportRow, withinAbs } from '../../bench/report';

describe('bench table rows', () => {
  test('a target passes only with a measured ratio inside it', () => {
    expect(reportRow({ measure: 'm', ours: '1', ratio: 1.2, target: atMost(1.5) }).pass).toBe(true);
    expect(reportRow({ measure: 'm', ours: '1', ratio: 1.6, target: atMost(1.5) }).pass).toBe(false);
    expect(reportRow({ measure: 'm', ours: '1', ratio: 0.79, target: atLeast(0.8) }).pass).toBe(false);
    expect(reportRow({ measure: 'm', ours: '1', ratio: -0.004, target: withinAbs(0.01) }).pass).toBe(true);
    expect(reportRow({ measure: 'm', ours: '1', ratio: -0.02, target: withinAbs(0.01) }).pass).toBe(false);
  });

  test('no evidence fails the target; a row without a target has no verdict', () => {
    expect(reportRow({ measure: 'm', ours: 'not measured', target: atMost(1.2) })).toMatchObject({ ratio: null, pass: false });
    expect(reportRow({ measure: 'm', ours: 'x', ratio: Number.NaN, target: atMost(1.2) }).pass).toBe(false);
    expect(reportRow({ measure: 'm', ours: 'x', ratio: 2 }).pass).toBeNull();
  });

  test('the table has the six columns and marks a miss', () => {
    const table = formatTable([reportRow({ measure: 'gbdt', ours: '2 s', baseline: '1 s', ratio: 2, target: atMost(1.5) })]);
    expect(table.split('\n')[0]).toBe('| measure | ours | baseline | ratio | target | pass |');
    expect(table).toContain('| gbdt | 2 s | 1 s | 2.00 | ≤ 1.5 | **no** |');
  });
});

const WRK_OUTPUT = `Running 10s test @ http://127.0.0.1:8000/v2/models/m/infer
  1 threads and 1 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   312.45us  100.00us   5.00ms   90.00%
    Req/Sec     3.20k   100.00     3.40k    70.00%
  Latency Distribution
     50%  298.00us
     75%  330.00us
     90%  400.00us
     99%    1.20ms
  32000 requests in 10.00s, 5.00MB read
Requests/sec:   3200.15
Transfer/sec:      0.50MB
`;

describe('wrk output', () => {
  test('rate and percentiles in milliseconds', () => {
    expect(parseWrk(WRK_OUTPUT)).toEqual({ requestsPerSecond: 3200.15, p50Ms: 0.298, p99Ms: 1.2, requests: 32000 });
  });

  test('a run with failed requests is void', () => {
    expect(() => parseWrk(WRK_OUTPUT.replace('Requests/sec', '  Non-2xx or 3xx responses: 12\nRequests/sec'))).toThrow(/Non-2xx or 3xx responses: 12/);
    expect(() => parseWrk(WRK_OUTPUT.replace('Requests/sec', '  Socket errors: connect 0, read 3, write 0, timeout 0\nRequests/sec'))).toThrow(/Socket errors/);
  });
});
