/**
 * Calls that no well-behaved client makes, sent with @grpc/grpc-js's plain
 * client: bytes that are no protobuf message, and a request that leaves out
 * what etcd requires. The bridge must answer each with a status and stay up.
 */
import { proc } from '../jepsen/node-api.ts';

interface Status {
  readonly code: number;
  readonly details: string;
}
interface Client {
  makeUnaryRequest(
    method: string,
    serialize: (x: Uint8Array) => Uint8Array,
    deserialize: (b: Uint8Array) => Uint8Array,
    argument: Uint8Array,
    callback: (e: Status | null, v?: Uint8Array) => void,
  ): void;
  makeBidiStreamRequest(
    method: string,
    serialize: (x: Uint8Array) => Uint8Array,
    deserialize: (b: Uint8Array) => Uint8Array,
  ): {
    write(x: Uint8Array): void;
    end(): void;
    on(event: 'error', fn: (e: Status) => void): void;
    on(event: 'data', fn: (b: Uint8Array) => void): void;
    on(event: 'end', fn: () => void): void;
  };
  close(): void;
}
const { createRequire } = proc.getBuiltinModule('node:module') as {
  createRequire(from: string): (id: string) => unknown;
};
const { Buffer } = proc.getBuiltinModule('node:buffer') as { Buffer: { from(b: Uint8Array): Uint8Array } };
const grpc = createRequire(import.meta.url)('@grpc/grpc-js') as {
  Client: new (address: string, credentials: unknown) => Client;
  credentials: { createInsecure(): unknown };
};

const same = (x: Uint8Array): Uint8Array => Buffer.from(x);

/** Not a protobuf message: a field tag whose varint never ends. */
export const GARBAGE = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);

/** One unary call of `method` with `body` as the message's bytes: its status (0 for OK). */
export function rawUnary(endpoint: string, method: string, body: Uint8Array): Promise<Status> {
  const client = new grpc.Client(endpoint, grpc.credentials.createInsecure());
  return new Promise<Status>((resolve) => {
    client.makeUnaryRequest(method, same, same, body, (e) => {
      client.close();
      resolve(e === null ? { code: 0, details: 'OK' } : { code: e.code, details: e.details });
    });
  });
}

/** A Watch stream that sends `body` as its first message: the status it ends with. */
export function rawWatch(endpoint: string, body: Uint8Array): Promise<Status> {
  const client = new grpc.Client(endpoint, grpc.credentials.createInsecure());
  return new Promise<Status>((resolve) => {
    const call = client.makeBidiStreamRequest('/etcdserverpb.Watch/Watch', same, same);
    call.on('data', () => {});
    call.on('error', (e) => {
      client.close();
      resolve({ code: e.code, details: e.details });
    });
    call.on('end', () => {
      client.close();
      resolve({ code: 0, details: 'OK' });
    });
    call.write(body);
    call.end();
  });
}
