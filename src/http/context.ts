import type { Context } from "hono";
import type { RequestIdVariables } from "hono/request-id";

/** Per-request values that middleware sets for handlers. */
export type AppEnv = {
  Variables: RequestIdVariables & {
    /** `sub` of the verified admin JWT. */
    adminSubject: string;
    /** Outcome label for the request log line, set by handlers that know more than the status. */
    outcome: string;
  };
};

export type AppContext = Context<AppEnv>;

/** Resolves the client's IP address for rate limiting. */
export type ClientIpResolver = (c: Context) => string;
