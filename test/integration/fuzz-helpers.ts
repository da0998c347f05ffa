/** What the API's property-based probes share: hostile names and values, and the store's footprint. */
import { env } from 'cloudflare:workers';
import fc from 'fast-check';
import { json, type TestApi } from './api-helpers.ts';
import { leader, status } from './cluster-helpers.ts';

/** Names that a careless or hostile client might send where we look names up. */
export const INHERITED = ['toString', '__proto__', 'constructor', 'hasOwnProperty', 'valueOf', 'isPrototypeOf'];
/** Values that are the wrong type, size or name almost everywhere. */
export const weird = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, 1.5, 2 ** 53, -(2 ** 53), 1e308, '', 'toString', '\uFFFD'),
  fc.constantFrom({}, [], [[]], { __proto__: null }),
  fc.jsonValue({ maxDepth: 2 }),
);

/** Sets `name` as an own, enumerable property (so `__proto__` is a key, not the prototype). */
export function withField(o: Record<string, unknown>, name: string, value: unknown): Record<string, unknown> {
  const out = { ...o };
  Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true });
  return out;
}

export interface Footprint {
  readonly leader: string;
  readonly term: number;
  readonly applied: number;
  readonly revision: number;
}

export async function footprint(api: TestApi): Promise<Footprint> {
  const lead = await leader(api.names);
  const st = await status(lead);
  const res = await api.fetch('/v1/kv?count_only=true&consistency=serializable');
  const { revision } = await json<{ revision: number }>(res);
  return { leader: lead, term: st.term, applied: st.applied, revision };
}

/** An integer knob of the probes (FUZZ_RUNS, FUZZ_SEED): a binding vitest.config.ts passes from the environment, or `dflt`. */
export function fuzzKnob(name: string, dflt: number): number {
  const v = Number((env as unknown as Record<string, unknown>)[name] ?? dflt);
  if (!Number.isSafeInteger(v)) throw new Error(`${name}: expected an integer`);
  return v;
}
