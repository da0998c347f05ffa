import fc from 'fast-check';
import { expect } from 'vitest';

/**
 * `sound` with one to four bytes flipped, dropped or added, or else up to 64
 * random bytes: the bodies a decoder must refuse cleanly or read as something
 * that could have been sent.
 */
function damagedBytes(sound: Uint8Array): fc.Arbitrary<Uint8Array> {
  const edit = fc.tuple(fc.nat(), fc.constantFrom('flip', 'drop', 'add'), fc.integer({ min: 1, max: 255 }));
  return fc.oneof(
    fc.array(edit, { minLength: 1, maxLength: 4 }).map((edits) => {
      const b = [...sound];
      for (const [pos, op, v] of edits) {
        const at = pos % b.length;
        if (op === 'flip') b[at] = (b[at] as number) ^ v;
        else if (op === 'drop') b.splice(at, 1);
        else b.splice(at, 0, v);
      }
      return Uint8Array.from(b);
    }),
    fc.uint8Array({ maxLength: 64 }),
  );
}

/**
 * Property over 3,000 damaged copies of `sound`: each is refused with an
 * error of class `refusal`, or decodes to a value that `reencode` (encode,
 * then decode) gives back unchanged, something a sender could have sent.
 * Returns how many were refused.
 */
export function refusedOrRoundTrips<T>(
  sound: Uint8Array,
  decode: (b: Uint8Array) => T,
  reencode: (v: T) => T,
  refusal: abstract new (...args: never[]) => Error,
): number {
  let refused = 0;
  fc.assert(
    fc.property(damagedBytes(sound), (body) => {
      let v: T;
      try {
        v = decode(body);
      } catch (e) {
        expect(e, String(e)).toBeInstanceOf(refusal);
        refused++;
        return;
      }
      expect(reencode(v)).toEqual(v);
    }),
    { numRuns: 3000, seed: 20_261_208 },
  );
  return refused;
}
