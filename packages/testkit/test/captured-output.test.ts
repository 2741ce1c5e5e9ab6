import { describe, expect, it } from 'vitest';
import { capturedOutput } from '../src/captured-output.js';

describe('capturedOutput', () => {
  it('keeps what is written to each stream apart, as text, multi-byte characters across chunks included', () => {
    const o = capturedOutput();
    const euro = Buffer.from('€');
    o.stdout.write('a');
    o.stdout.write(euro.subarray(0, 1));
    o.stdout.write(euro.subarray(1));
    o.stderr.write('b\n');
    expect([o.out(), o.err()]).toEqual(['a€', 'b\n']);
  });
});
