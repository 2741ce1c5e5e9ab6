import { describe, expect, it } from 'vitest';
import { acceptedIndexCodings } from '../../src/routes/content-negotiation.js';

describe('acceptedIndexCodings', () => {
  it('prefers zstd, honours q-values, q=0 and *', () => {
    expect(acceptedIndexCodings(undefined)).toEqual([]);
    expect(acceptedIndexCodings('identity')).toEqual([]);
    expect(acceptedIndexCodings('zstd, gzip')).toEqual(['zstd', 'gzip']);
    expect(acceptedIndexCodings('gzip, zstd')).toEqual(['zstd', 'gzip']);
    expect(acceptedIndexCodings('gzip;q=1, zstd;q=0.5')).toEqual(['gzip', 'zstd']);
    expect(acceptedIndexCodings('gzip, deflate, br')).toEqual(['gzip']);
    expect(acceptedIndexCodings('zstd;q=0, *')).toEqual(['gzip']);
    expect(acceptedIndexCodings('x-gzip')).toEqual(['gzip']);
    expect(acceptedIndexCodings('*;q=0')).toEqual([]);
  });
});
