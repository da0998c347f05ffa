import { app } from './api/app.ts';

export default app;
export { RaftNode } from './node/raft-node.ts';
