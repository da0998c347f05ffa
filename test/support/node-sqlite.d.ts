// The slice of node:sqlite (Node 22.5+) that test/support/node-sql.ts uses. The
// project compiles against the Workers types, not @types/node, so it is declared here.
declare module 'node:sqlite' {
  export class DatabaseSync {
    constructor(path: string);
    exec(sql: string): void;
    prepare(sql: string): { all(...params: unknown[]): unknown[]; run(...params: unknown[]): unknown };
    close(): void;
  }
}
