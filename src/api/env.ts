/** The Hono environment every route of the public API shares: its bindings and what the middleware sets. */
import type { Context, Hono } from 'hono';
import type { Principal } from './auth.ts';
import type { ClusterClient } from './cluster.ts';
import type { Preconditions } from './conditions.ts';
import type { ApiConfig, ApiEnv } from './config.ts';
import type { DecodedInput } from './request.ts';

export type Env = {
  Bindings: ApiEnv;
  Variables: {
    requestId: string;
    input: DecodedInput;
    preconditions: Preconditions;
    config: ApiConfig;
    principal: Principal;
    client: ClusterClient;
  };
};
export type C = Context<Env>;
export type App = Hono<Env>;
