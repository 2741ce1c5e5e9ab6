import { describe, expect, it } from 'vitest';
import { Metrics } from '../src/metrics.js';

const gauges = {
  inflight: 3,
  maxInflight: 256,
  connections: 7,
  openFiles: 5,
  memoryCacheBytes: 1024,
  memoryCacheHits: 9,
};

describe('Metrics', () => {
  it('renders counters, a cumulative histogram and gauges in Prometheus text format', () => {
    let now = 1000;
    const m = new Metrics(() => now);
    m.request('block', 200, 262144, 0.0004);
    m.request('block', 200, 1000, 0.003);
    m.request('block', 404, 10, 20);
    m.request('bad', 400, 0, 0);
    m.error('io');
    m.pull('fetched', 5000);
    now = 3500;
    const text = m.render(gauges);
    expect(text).toContain('# TYPE thfc_mirror_requests_total counter');
    expect(text).toContain('thfc_mirror_requests_total{route="block",code="200"} 2');
    expect(text).toContain('thfc_mirror_requests_total{route="block",code="404"} 1');
    expect(text).toContain('thfc_mirror_requests_total{route="bad",code="400"} 1');
    expect(text).toContain('thfc_mirror_response_bytes_total{route="block"} 263154');
    expect(text).toContain('# TYPE thfc_mirror_request_duration_seconds histogram');
    expect(text).toContain('thfc_mirror_request_duration_seconds_bucket{route="block",le="0.0005"} 1');
    expect(text).toContain('thfc_mirror_request_duration_seconds_bucket{route="block",le="0.005"} 2');
    expect(text).toContain('thfc_mirror_request_duration_seconds_bucket{route="block",le="10"} 2');
    expect(text).toContain('thfc_mirror_request_duration_seconds_bucket{route="block",le="+Inf"} 3');
    expect(text).toContain('thfc_mirror_request_duration_seconds_count{route="block"} 3');
    expect(text).toMatch(/thfc_mirror_request_duration_seconds_sum\{route="block"\} 20\.003/);
    expect(text).toContain('thfc_mirror_errors_total{kind="io"} 1');
    expect(text).toContain('thfc_mirror_errors_total{kind="aborted"} 0');
    expect(text).toContain('thfc_mirror_pull_through_total{result="fetched"} 1');
    expect(text).toContain('thfc_mirror_pull_through_bytes_total 5000');
    expect(text).toContain('thfc_mirror_inflight_requests 3');
    expect(text).toContain('thfc_mirror_open_connections 7');
    expect(text).toContain('thfc_mirror_memory_cache_bytes 1024');
    expect(text).toContain('thfc_mirror_memory_cache_hits_total 9');
    expect(text).toContain('thfc_mirror_uptime_seconds 2.500');
    expect(text.endsWith('\n')).toBe(true);
    // Every sample line is NAME{labels} VALUE or NAME VALUE.
    for (const line of text.trim().split('\n')) {
      if (!line.startsWith('#')) expect(line).toMatch(/^[a-z_]+(\{[^}]*\})? [0-9.e+-]+$/);
    }
    expect(m.count('block')).toBe(3);
    expect(m.count('block', 404)).toBe(1);
    expect(m.totalRequests()).toBe(4);
  });
});
