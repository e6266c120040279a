// The daemon's REST API, as much of it as getPort needs (status, allocate, release): JSON over
// node:http, on the Unix socket (socketPath) or loopback TCP, with kept-alive connections that
// never hold the process open.

import { existsSync } from "node:fs";
import * as http from "node:http";

import { type Target, candidates, checkSocket, describe } from "./target.js";

/** Milliseconds one request (connect included) may take. */
export const REQUEST_TIMEOUT_MS = 10_000;

/** The daemon refused a request, or stopped answering. */
export class PortwardenError extends Error {
  /** The HTTP status; 0 when no answer came. */
  readonly status: number;
  /** The gRPC code of the daemon's `{"code","message","details"}` answer (14, UNAVAILABLE, when none came). */
  readonly code: number;
  /** The daemon's `google.rpc` details (field violations, who holds a port, ...). */
  readonly details: unknown[];
  /** The daemon's address. */
  readonly target: string;

  constructor(target: string, status: number, code: number, message: string, details: unknown[] = []) {
    super(`portwarden daemon at ${target}: ${message}${status ? ` (HTTP ${status})` : ""}`);
    this.name = "PortwardenError";
    this.target = target;
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** An inclusive range of ports. */
export type Range = { start: number; end: number };

/** What getPort needs of `GET /api/ports/status`. */
export type Pools = { service: Range[]; test: Range[] };

/** The JSON an allocation answer carries (`POST /api/ports/allocations`). */
export type Allocated = { allocation: { port: number; service: string }; lease_token: string };

const agents = new Map<string, http.Agent>();

function agent(key: string): http.Agent {
  let a = agents.get(key);
  if (!a) {
    // Idle kept-alive sockets are unref'd by node: they never keep the process alive.
    a = new http.Agent({ keepAlive: true, maxSockets: 8 });
    agents.set(key, a);
  }
  return a;
}

type Answer = { status: number; body: any };

function once(target: Target, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer & { reused: boolean }> {
  if (target.kind === "tls") throw new Error("unreachable: tls targets are not asked");
  const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const where =
    target.kind === "unix"
      ? { socketPath: target.path, host: "localhost", agent: agent(`unix:${target.path}`) }
      : { host: target.host, port: target.port, agent: agent(target.url) };
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        ...where,
        method,
        path,
        headers: {
          accept: "application/json",
          ...(data ? { "content-type": "application/json", "content-length": String(data.length) } : {}),
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const raw = Buffer.concat(chunks).toString("utf8");
          let parsed: unknown = null;
          try {
            parsed = raw ? JSON.parse(raw) : null;
          } catch {
            parsed = { code: 0, message: raw.slice(0, 200) };
          }
          resolve({ status: res.statusCode ?? 0, body: parsed, reused: req.reusedSocket });
        });
      },
    );
    req.setTimeout(REQUEST_TIMEOUT_MS, () => {
      req.destroy(Object.assign(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`), { code: "ETIMEDOUT" }));
    });
    req.on("error", (e: NodeJS.ErrnoException) => reject(Object.assign(e, { reused: req.reusedSocket })));
    req.end(data);
  });
}

/** One request; a kept-alive connection the daemon had closed is retried once on a new one.
 * Rejects with the socket error (ENOENT, ECONNREFUSED, ...) when the daemon cannot be reached. */
export async function request(target: Target, method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Answer> {
  try {
    return await once(target, method, path, body, headers);
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { reused?: boolean };
    if (err.reused && (err.code === "ECONNRESET" || err.code === "EPIPE")) {
      return once(target, method, path, body, headers);
    }
    throw err;
  }
}

/** A request that must succeed: its JSON, else a PortwardenError with the daemon's message. */
export async function call(target: Target, method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<any> {
  let answer: Answer;
  try {
    answer = await request(target, method, path, body, headers);
  } catch (e) {
    throw new PortwardenError(describe(target), 0, 14, `stopped answering: ${(e as Error).message}`);
  }
  if (answer.status >= 400) {
    const b = answer.body && typeof answer.body === "object" ? answer.body : {};
    throw new PortwardenError(describe(target), answer.status, Number(b.code ?? 0), String(b.message ?? ""), Array.isArray(b.details) ? b.details : []);
  }
  return answer.body;
}

/** `"15000-24999,30000"` -> ranges. */
export function parseRanges(text: string | null | undefined): Range[] {
  if (!text) return [];
  return text.split(",").map((part) => {
    const [a, b] = part.trim().split("-");
    const start = Number(a);
    return { start, end: b === undefined ? start : Number(b) };
  });
}

export function inRanges(port: number, ranges: Range[]): boolean {
  return ranges.some((r) => r.start <= port && port <= r.end);
}

/** What stood in the way of `target`, in the CLI's words. */
function why(target: Target, e: NodeJS.ErrnoException): string {
  const where = describe(target);
  switch (e.code) {
    case "ENOENT":
      return target.kind === "unix" ? `no socket at ${target.path}` : `${where}: ${e.message}`;
    case "EACCES":
      return target.kind === "unix" ? `permission denied on ${target.path}` : `${where}: ${e.message}`;
    case "ECONNREFUSED":
      return target.kind === "unix"
        ? `nothing listens at ${target.path} (the socket file is left from a daemon that stopped)`
        : `nothing listens at ${where} (connection refused)`;
    default:
      return `${where}: ${e.message}`;
  }
}

/** The daemon that answered, with its pools; or every attempt, each with its reason. */
export type Found = { target: Target; pools: Pools } | { attempts: string[] };

/** Tries the candidates in order (a missing default socket is skipped, as the CLI does). */
export async function discover(): Promise<Found> {
  const { targets, explicit } = candidates();
  const attempts: string[] = [];
  for (const target of targets) {
    if (target.kind === "tls") {
      attempts.push(
        `${target.url}: not used: a daemon reached over https serves another host; ask this host's daemon (unix:/PATH or http://127.0.0.1:PORT)`,
      );
      continue;
    }
    if (target.kind === "unix") {
      if (!explicit && !existsSync(target.path)) {
        attempts.push(`no socket at ${target.path}`);
        continue;
      }
      const unsafe = checkSocket(target.path);
      if (unsafe) {
        attempts.push(`unix:${target.path}: not used: ${unsafe}`);
        continue;
      }
    }
    let answer: Answer;
    try {
      answer = await request(target, "GET", "/api/ports/status");
    } catch (e) {
      attempts.push(why(target, e as NodeJS.ErrnoException));
      continue;
    }
    if (answer.status !== 200 || !answer.body || typeof answer.body !== "object") {
      attempts.push(`${describe(target)}: answered HTTP ${answer.status} to GET /api/ports/status: is it a portwarden daemon?`);
      continue;
    }
    const status = answer.body;
    const service: Range[] = Array.isArray(status.ranges)
      ? status.ranges.map((r: Range) => ({ start: Number(r.start), end: Number(r.end) }))
      : parseRanges(status.port_range);
    return { target, pools: { service, test: parseRanges(status.test_pool?.port_range) } };
  }
  return { attempts };
}
