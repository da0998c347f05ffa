/** The one import site of the linearizability checker (test/support), so the simulator names it once. */
export {
  type CheckResult,
  checkLinearizable,
  type HistoryOp,
  type KvOp,
  type KvOutput,
} from '../support/linearizability.ts';
