import { describe, expect, it } from 'vitest';
import { currentPriority, Urgency } from '../src/sources/urgency.js';

describe('Urgency', () => {
  it('raise() turns background into demand and tells each listener once', () => {
    const u = new Urgency('background');
    const heard: string[] = [];
    u.onRaise(() => heard.push('a'));
    const stop = u.onRaise(() => heard.push('b'));
    u.onRaise(() => heard.push('c'));
    stop();
    expect(u.priority).toBe('background');
    u.raise();
    u.raise();
    expect(u.priority).toBe('demand');
    expect(heard).toEqual(['a', 'c']);
  });

  it('a demand urgency never calls a listener', () => {
    const u = new Urgency('demand');
    let heard = 0;
    u.onRaise(() => heard++);
    u.raise();
    expect(heard).toBe(0);
    const raised = new Urgency('background');
    raised.raise();
    raised.onRaise(() => heard++); // too late: already demand
    expect(heard).toBe(0);
  });

  it('currentPriority prefers the urgency, then the fixed priority, then demand', () => {
    const u = new Urgency('background');
    expect(currentPriority({ priority: 'demand', urgency: u })).toBe('background');
    u.raise();
    expect(currentPriority({ priority: 'background', urgency: u })).toBe('demand');
    expect(currentPriority({ priority: 'background' })).toBe('background');
    expect(currentPriority({})).toBe('demand');
    expect(currentPriority(undefined)).toBe('demand');
  });
});
