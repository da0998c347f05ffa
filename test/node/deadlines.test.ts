import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Deadlines } from '../../src/node/deadlines.ts';

describe('Deadlines: many timeouts on one timer', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('expires each caller at its own deadline, earliest first, whatever the order they came in', () => {
    const d = new Deadlines();
    const fired: string[] = [];
    d.add(300, () => fired.push('c'));
    d.add(100, () => fired.push('a'));
    d.add(200, () => fired.push('b'));
    vi.advanceTimersByTime(99);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(fired).toEqual(['a']);
    vi.advanceTimersByTime(100);
    expect(fired).toEqual(['a', 'b']);
    vi.advanceTimersByTime(100);
    expect(fired).toEqual(['a', 'b', 'c']);
    expect(d.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('never expires a caller that settled, and keeps no timer once nobody waits', () => {
    const d = new Deadlines();
    const fired: string[] = [];
    const cancelA = d.add(100, () => fired.push('a'));
    const cancelB = d.add(200, () => fired.push('b'));
    cancelA();
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(150);
    expect(fired).toEqual([]);
    cancelB();
    cancelB();
    expect(d.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(1000);
    expect(fired).toEqual([]);
  });

  it('arms one timer for many callers under load', () => {
    const d = new Deadlines();
    const cancels = Array.from({ length: 64 }, () => d.add(2000, () => {}));
    expect(vi.getTimerCount()).toBe(1);
    for (const c of cancels.slice(0, 63)) c();
    expect(vi.getTimerCount()).toBe(1);
    cancels[63]?.();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('re-arms for a deadline added by an expiring caller', () => {
    const d = new Deadlines();
    const fired: string[] = [];
    d.add(100, () => {
      fired.push('a');
      d.add(50, () => fired.push('again'));
    });
    d.add(500, () => fired.push('late'));
    vi.advanceTimersByTime(100);
    expect(fired).toEqual(['a']);
    vi.advanceTimersByTime(50);
    expect(fired).toEqual(['a', 'again']);
    vi.advanceTimersByTime(350);
    expect(fired).toEqual(['a', 'again', 'late']);
  });
});
