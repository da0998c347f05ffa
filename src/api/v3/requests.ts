/** etcd's request messages (RangeRequest, PutRequest, DeleteRangeRequest) as the store's queries and commands. */
import type { KvCommand } from '../../kv/index.ts';
import { ETCD } from './etcd-errors.ts';
import { boolField, bytesField, enumField, intField, keyOf } from './etcd-json.ts';
import { type EtcdRange, intervalOf, SORT_ORDERS, SORT_TARGETS } from './range.ts';

/** A RangeRequest message. */
export function rangeOf(m: Record<string, unknown>): EtcdRange {
  const key = keyOf(bytesField(m, 'key'), 'key');
  if (key === '') throw ETCD.emptyKey();
  const end = bytesField(m, 'range_end');
  const revision = intField(m, 'revision');
  return {
    key,
    rangeEnd: end.byteLength === 0 ? undefined : keyOf(end, 'range_end'),
    limit: Math.max(0, intField(m, 'limit')),
    revision: Math.max(0, revision),
    sortOrder: enumField(m, 'sort_order', SORT_ORDERS),
    sortTarget: enumField(m, 'sort_target', SORT_TARGETS),
    keysOnly: boolField(m, 'keys_only'),
    countOnly: boolField(m, 'count_only'),
    minModRevision: intField(m, 'min_mod_revision'),
    maxModRevision: intField(m, 'max_mod_revision'),
    minCreateRevision: intField(m, 'min_create_revision'),
    maxCreateRevision: intField(m, 'max_create_revision'),
  };
}

/** A PutRequest message. */
export function putOf(m: Record<string, unknown>): KvCommand & { type: 'put' } {
  const key = keyOf(bytesField(m, 'key'), 'key');
  if (key === '') throw ETCD.emptyKey();
  const value = bytesField(m, 'value');
  const lease = intField(m, 'lease');
  const ignoreValue = boolField(m, 'ignore_value');
  const ignoreLease = boolField(m, 'ignore_lease');
  if (ignoreValue && value.byteLength > 0) throw ETCD.valueProvided();
  if (ignoreLease && lease !== 0) throw ETCD.leaseProvided();
  return {
    type: 'put',
    key,
    value,
    ...(lease > 0 ? { lease } : {}),
    ...(boolField(m, 'prev_kv') ? { prevKv: true } : {}),
    ...(ignoreValue ? { ignoreValue: true } : {}),
    ...(ignoreLease ? { ignoreLease: true } : {}),
  };
}

/** A DeleteRangeRequest message. */
export function deleteOf(m: Record<string, unknown>): KvCommand & { type: 'delete' | 'deleteRange' } {
  const key = keyOf(bytesField(m, 'key'), 'key');
  if (key === '') throw ETCD.emptyKey();
  const endBytes = bytesField(m, 'range_end');
  const prevKv = boolField(m, 'prev_kv') ? true : undefined;
  if (endBytes.byteLength === 0) return { type: 'delete', key, prevKv };
  const { start, end } = intervalOf({ key, rangeEnd: keyOf(endBytes, 'range_end') });
  return { type: 'deleteRange', start, end, prevKv };
}
