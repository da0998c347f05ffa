export { Driver, type DriverOptions, type ProposeOutcome, type ReadOutcome } from './driver.ts';
export type { ApplyItem, LogStore, StateMachine, Transport } from './interfaces.ts';
