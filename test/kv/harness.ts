import type { ApplyItem } from '../../src/driver/interfaces.ts';
import {
  encodeCommand,
  type KvCommand,
  type KvResult,
  KvStateMachine,
  type KvStateMachineOptions,
  type KvTable,
  MemoryKvTable,
} from '../../src/kv/index.ts';

export const b = (s: string) => new TextEncoder().encode(s);
export const text = (v: Uint8Array | undefined) => (v === undefined ? undefined : new TextDecoder().decode(v));

/** A state machine fed one log index after another, as the driver would. */
export class Harness {
  readonly sm: KvStateMachine;
  readonly table: KvTable;
  index = 0;

  constructor(opts?: KvStateMachineOptions, table: KvTable = new MemoryKvTable()) {
    this.table = table;
    this.sm = new KvStateMachine(table, opts);
  }

  /** Applies one command in its own batch and returns its result. */
  run(cmd: KvCommand, requestId?: string): KvResult {
    return this.applyOne(this.command(cmd, requestId));
  }

  /** Applies one command item in its own batch and returns its result. */
  applyOne(item: ApplyItem): KvResult {
    const results = this.sm.apply([item]);
    if (results.length !== 1 || results[0] === undefined) throw new Error(`expected one result, got ${results.length}`);
    return results[0];
  }

  /** The next item carrying `cmd`. */
  command(cmd: KvCommand, requestId?: string): ApplyItem {
    return { index: ++this.index, kind: 'command', data: encodeCommand({ requestId, cmd }) };
  }

  /** The next item carrying raw bytes. */
  rawItem(data: Uint8Array): ApplyItem {
    return { index: ++this.index, kind: 'command', data };
  }

  put(key: string, value: string, requestId?: string): KvResult {
    return this.run({ type: 'put', key, value: b(value) }, requestId);
  }

  /** The value of `key` as text, or undefined. */
  value(key: string): string | undefined {
    return text(this.sm.get(key)?.value);
  }
}

/** Narrows a result to the expected kind, failing the test otherwise. */
export function as<T extends KvResult['type']>(r: KvResult, type: T): Extract<KvResult, { type: T }> {
  if (r.type !== type) throw new Error(`expected a ${type} result, got ${JSON.stringify(r)}`);
  return r as Extract<KvResult, { type: T }>;
}
