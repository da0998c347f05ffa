import { describe, expect, it } from 'vitest';
import { Lessor } from '../../src/node/lessor.ts';

const opts = { extendMs: 2_000, checkpointMs: 60_000, retryMs: 1_000 };

describe('Lessor: the leader lease clock', () => {
  it('a follower keeps no clock: it renews nothing and never wakes', () => {
    const l = new Lessor(opts);
    l.granted(1, 10, 0);
    expect(l.renew(1, 0)).toBeUndefined();
    expect(l.timeLeft(1, 0)).toBeUndefined();
    expect(l.nextWake()).toBeUndefined();
  });

  it('a grant expires TTL after it applied; a renewal at t moves the deadline to t + TTL, never earlier', () => {
    const l = new Lessor(opts);
    l.promote(0, []);
    l.granted(1, 10, 1_000);
    expect(l.nextWake()).toBe(11_000);
    expect(l.expired(10_999)).toEqual([]);
    expect(l.renew(1, 5_000)).toEqual({ ttl: 10, clearCheckpoint: false });
    expect(l.timeLeft(1, 5_000)).toBe(10_000);
    expect(l.expired(14_999)).toEqual([]);
    expect(l.expired(15_000)).toEqual([1]);
  });

  it('an expired lease is handed out once; a revocation refused before the log comes back after retryMs', () => {
    const l = new Lessor(opts);
    l.promote(0, [{ id: 7, ttl: 5, remaining: 0 }]);
    // Promotion extends by the election timeout.
    expect(l.expired(6_999)).toEqual([]);
    expect(l.expired(7_000)).toEqual([7]);
    expect(l.expired(8_000)).toEqual([]);
    expect(l.nextWake()).toBeUndefined();
    l.revokeRefused(7, 8_000);
    expect(l.nextWake()).toBe(9_000);
    expect(l.expired(9_000)).toEqual([7]);
    l.revoked(7);
    expect(l.expired(100_000)).toEqual([]);
  });

  it('a new leader starts every lease from its checkpoint (or TTL) plus the election timeout', () => {
    const l = new Lessor(opts);
    l.promote(10_000, [
      { id: 1, ttl: 600, remaining: 30 },
      { id: 2, ttl: 20, remaining: 0 },
    ]);
    expect(l.timeLeft(1, 10_000)).toBe(32_000);
    expect(l.timeLeft(2, 10_000)).toBe(22_000);
    // A checkpointed lease's renewal must clear the checkpoint in the log first.
    expect(l.renew(1, 11_000)).toEqual({ ttl: 600, clearCheckpoint: true });
    expect(l.renew(1, 12_000)).toEqual({ ttl: 600, clearCheckpoint: false });
    l.demote();
    expect(l.isPrimary()).toBe(false);
    expect(l.timeLeft(1, 12_000)).toBeUndefined();
  });

  it('checkpoints only leases with more than an interval left, rounding the time left up', () => {
    const l = new Lessor(opts);
    l.promote(0, []);
    l.granted(1, 300, 0);
    l.granted(2, 30, 0);
    expect(l.nextWake()).toBe(30_000);
    // Due at 60 s, taken from a quarter interval before (so leases due close together share a round).
    expect(l.checkpoints(44_999, 10)).toEqual([]);
    expect(l.checkpoints(45_500, 10)).toEqual([{ id: 1, remaining: 255 }]);
    // After a checkpoint, the next renewal clears it; renewing moves the next checkpoint on.
    expect(l.renew(1, 61_000)).toEqual({ ttl: 300, clearCheckpoint: true });
    expect(l.checkpoints(105_999, 10)).toEqual([]);
    expect(l.checkpoints(106_000, 10)).toEqual([{ id: 1, remaining: 255 }]);
    // A checkpoint applied from the log (an older leader's) also makes the next renewal clear it.
    l.granted(3, 300, 0);
    l.checkpointApplied(3, 100);
    expect(l.renew(3, 1_000)).toEqual({ ttl: 300, clearCheckpoint: true });
  });

  it('a renewal made before a checkpoint is computed shows in it: the checkpoint records the renewed time', () => {
    const l = new Lessor(opts);
    l.promote(0, []);
    l.granted(1, 300, 0);
    l.renew(1, 59_000);
    // The next checkpoint is due an interval after the renewal, from the renewed deadline.
    expect(l.checkpoints(119_000, 10)).toEqual([{ id: 1, remaining: 240 }]);
  });

  it('leases renewed at different times are checkpointed in one round, then stay together', () => {
    const l = new Lessor(opts);
    l.promote(0, []);
    for (let i = 1; i <= 5; i++) l.granted(i, 600, i * 2_000);
    expect(l.checkpoints(62_000, 10).map((c) => c.id)).toEqual([1, 2, 3, 4, 5]);
    expect(l.checkpoints(121_999, 10)).toEqual([]);
    expect(l.checkpoints(122_000, 10).map((c) => c.id)).toEqual([1, 2, 3, 4, 5]);
  });

  it('a saved deadline is reused as it is; leases not saved restart from their TTL plus the election timeout', () => {
    const l = new Lessor(opts);
    l.promote(
      50_000,
      [
        { id: 1, ttl: 10, remaining: 0 },
        { id: 2, ttl: 10, remaining: 0 },
      ],
      new Map([[1, 41_000]]),
    );
    expect(l.timeLeft(1, 40_000)).toBe(1_000);
    expect(l.expired(50_000)).toEqual([1]);
    expect(l.timeLeft(2, 50_000)).toBe(12_000);
    expect(l.deadlines()).toEqual([
      [1, 41_000],
      [2, 62_000],
    ]);
  });

  it('between due times the checks cost nothing; the wake time is a lower bound, exact when asked (going quiet)', () => {
    const l = new Lessor(opts);
    l.promote(0, []);
    l.granted(1, 10, 0);
    l.renew(1, 5_000);
    // Renewals leave the lower bound where it was: an awake leader may wake early and find nothing.
    expect(l.nextWake()).toBe(10_000);
    expect(l.expired(10_000)).toEqual([]);
    expect(l.nextWake()).toBe(15_000);
    l.renew(1, 8_000);
    expect(l.nextWake(true)).toBe(18_000);
  });

  it('a renewal that comes after the deadline is refused as expired, and does not call the revocation back', () => {
    const l = new Lessor(opts);
    l.promote(0, []);
    l.granted(7, 2, 0);
    // Past the deadline, before the keeper has even looked: too late.
    expect(l.renew(7, 2_000)).toBe('expired');
    expect(l.expired(2_000)).toEqual([7]);
    expect(l.renew(7, 2_100)).toBe('expired');
    expect(l.expired(2_200)).toEqual([]);
    expect(l.timeLeft(7, 2_100)).toBe(0);
  });
});
