export { MemoryLogStore } from './memory-log-store.ts';
