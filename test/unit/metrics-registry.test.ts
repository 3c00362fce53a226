import { MetricNameError, MetricsRegistry } from '../../infra/metrics';

describe('metrics registry', () => {
  test('refuses names that break the conventions when they are declared', () => {
    const r = new MetricsRegistry();
    expect(() => r.counter('mlops_requests', 'x')).toThrow(MetricNameError);
    expect(() => r.gauge('mlops_pending_total', 'x')).toThrow(/only counters end in _total/);
    expect(() => r.histogram('mlops_latency_ms', 'x', [], [1, 2])).toThrow(/base units/);
    expect(() => r.gauge('mlops_rows', '  ')).toThrow(/help/);
    expect(() => r.histogram('mlops_duration_seconds', 'x', ['le'], [1])).toThrow(/reserved/);
    expect(() => r.histogram('mlops_duration_seconds', 'x', [], [2, 1])).toThrow(/increase/);
    r.gauge('mlops_rows', 'Rows.');
    expect(() => r.gauge('mlops_rows', 'again')).toThrow(/declared twice/);
  });

  test('renders help, type and series; escapes label values; counters only go up', async () => {
    const r = new MetricsRegistry();
    const c = r.counter('mlops_things_total', 'Things.\nSecond line.', ['model']);
    const h = r.histogram('mlops_step_duration_seconds', 'Step time.', ['step'], [0.1, 1]);
    c.inc({ model: 'a"b\\c' }, 2);
    h.observe({ step: 'train' }, 0.5);
    expect(() => c.inc({ model: 'x' }, -1)).toThrow(/cannot go down/);
    expect(() => c.inc({})).toThrow(/labels/);
    const text = await r.render();
    expect(text).toBe(
      [
        '# HELP mlops_things_total Things.\\nSecond line.',
        '# TYPE mlops_things_total counter',
        'mlops_things_total{model="a\\"b\\\\c"} 2',
        '# HELP mlops_step_duration_seconds Step time.',
        '# TYPE mlops_step_duration_seconds histogram',
        'mlops_step_duration_seconds_bucket{step="train",le="0.1"} 0',
        'mlops_step_duration_seconds_bucket{step="train",le="1"} 1',
        'mlops_step_duration_seconds_bucket{step="train",le="+Inf"} 1',
        'mlops_step_duration_seconds_sum{step="train"} 0.5',
        'mlops_step_duration_seconds_count{step="train"} 1',
        '',
      ].join('\n'),
    );
  });
});
