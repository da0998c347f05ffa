import fc from 'fast-check';

/**
 * `sound` with one to four bytes flipped, dropped or added, or else up to 64
 * random bytes: the bodies a decoder must refuse cleanly or read as something
 * that could have been sent.
 */
export function damagedBytes(sound: Uint8Array): fc.Arbitrary<Uint8Array> {
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
