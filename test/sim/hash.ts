/** Small non-cryptographic hashes for invariants (entry identity) and run traces (determinism). */

/** FNV-1a over bytes, 32 bits. */
export function hashBytes(b: Uint8Array, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ (b[i] as number), 0x01000193);
  return h >>> 0;
}

/** FNV-1a over the UTF-16 code units of a string, 32 bits. */
export function hashString(s: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** A running 64-bit (two lanes of 32) digest of everything a run did, in order. */
export class TraceHash {
  private h1 = 0x811c9dc5;
  private h2 = 0x2545f491;
  count = 0;

  add(n: number): void {
    const v = n >>> 0;
    this.h1 = Math.imul(this.h1 ^ v, 0x01000193) >>> 0;
    this.h2 = Math.imul((this.h2 ^ v) + 0x9e3779b9, 0x85ebca6b) >>> 0;
    this.h2 = (this.h2 ^ (this.h2 >>> 13)) >>> 0;
    this.count++;
  }

  addString(s: string): void {
    this.add(hashString(s));
  }

  hex(): string {
    return this.h1.toString(16).padStart(8, '0') + this.h2.toString(16).padStart(8, '0');
  }
}
