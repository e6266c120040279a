// portwarden for Node: get-port's API, answered by the portwarden daemon of this host.
//
//   import getPort, { portNumbers, waitForPort } from "portwarden";
//   const port = await getPort();                                  // from the daemon's test pool
//   const web = await getPort({ port: [3000, 3001], name: "web" });
//
// A port from the daemon is allocated from its test pool, owned by this process (its PID) and
// taken back by the daemon when the process exits; no other process gets it meanwhile. When no
// daemon answers, ports are found as get-port finds them (bind to port 0, then close), with one
// warning per process.

import * as net from "node:net";
import { basename, extname } from "node:path";

import { type Allocated, type Found, type Pools, PortwardenError, call, discover, inRanges } from "./daemon.js";
import { isFree, isLocked, kernelPort, lock, unlock } from "./local.js";
import { type Target, describe } from "./target.js";

export { PortwardenError } from "./daemon.js";

/** What getPort takes; every field is optional. */
export interface Options {
  /** A preferred port, or an iterable of them (e.g. `portNumbers(3000, 3100)`), tried in order
   * before any other port; 0 means any port at that point, as in get-port. */
  readonly port?: number | Iterable<number>;
  /** `[from, to]`, inclusive: more preferred ports, tried after `port`. */
  readonly portRange?: readonly [number, number];
  /** Ports that must not be returned. */
  readonly exclude?: Iterable<number>;
  /** Where a port that the daemon does not manage is checked by binding (default: every local
   * address, as get-port does). */
  readonly host?: string;
  /** The allocation's service name, `[A-Za-z0-9._-]{1,64}` (default: `node.<script name>`). */
  readonly name?: string;
  /** Lease seconds (1 to 2592000): the daemon takes the port back after that long, or when this
   * process exits, whichever comes first. Default: when this process exits. */
  readonly ttl?: number;
}

const SERVICE_NAME = /^[A-Za-z0-9._-]{1,64}$/;
const MAX_TTL = 2_592_000;
/** purpose and started_by hold at most this many bytes (the daemon's limit). */
const MAX_TEXT_BYTES = 256;
/** Ports re-asked when the daemon's answer is an excluded port. */
const EXCLUDED_RETRIES = 64;

function isPort(p: unknown): p is number {
  return Number.isInteger(p) && (p as number) >= 1 && (p as number) <= 65535;
}

function checkPort(field: string, p: unknown): number {
  if (!isPort(p)) throw new RangeError(`${field}: each port must be an integer from 1 to 65535; got ${String(p)}`);
  return p;
}

/** A preference: a port, or 0 for "any port now" (as get-port reads it). */
function checkPreference(p: unknown): number {
  if (p === 0) return 0;
  if (!isPort(p)) throw new RangeError(`port: each port must be an integer from 1 to 65535 (or 0: any port); got ${String(p)}`);
  return p;
}

function isIterable(x: unknown): x is Iterable<unknown> {
  return x != null && typeof (x as Iterable<unknown>)[Symbol.iterator] === "function";
}

/**
 * Port numbers from `from` to `to`, inclusive, for `port` or `exclude` (as get-port's).
 */
export function portNumbers(from: number, to: number): Iterable<number> {
  if (!Number.isInteger(from) || !Number.isInteger(to)) {
    throw new TypeError(`portNumbers: from and to must be integers; got ${String(from)} and ${String(to)}`);
  }
  if (from < 1024 || from > 65535) throw new RangeError(`portNumbers: from must be from 1024 to 65535; got ${from}`);
  if (to < 1024 || to > 65535) throw new RangeError(`portNumbers: to must be from 1024 to 65535; got ${to}`);
  if (to < from) throw new RangeError(`portNumbers: to must be at least from; got ${from} to ${to}`);
  return {
    *[Symbol.iterator]() {
      for (let p = from; p <= to; p++) yield p;
    },
  };
}

type Checked = {
  preferences: () => Iterable<number>;
  exclude: Set<number>;
  host: string | undefined;
  service: string;
  ttl: number | undefined;
};

function validate(options: Options | undefined): Checked {
  if (options === undefined || options === null) options = {};
  if (typeof options !== "object") throw new TypeError(`getPort: options must be an object; got ${typeof options}`);
  const { port, portRange, exclude, host, name, ttl } = options;
  if (port !== undefined && typeof port !== "number" && (typeof port === "string" || !isIterable(port))) {
    throw new TypeError("port: must be a port number or an iterable of port numbers");
  }
  if (typeof port === "number") checkPreference(port);
  // A list is checked whole, now; other iterables (portNumbers, generators) as they are read.
  if (Array.isArray(port)) for (const p of port) checkPreference(p);
  let range: [number, number] | undefined;
  if (portRange !== undefined) {
    if (!Array.isArray(portRange) || portRange.length !== 2) {
      throw new TypeError("portRange: must be [from, to]");
    }
    range = [checkPort("portRange", portRange[0]), checkPort("portRange", portRange[1])];
    if (range[1] < range[0]) throw new RangeError(`portRange: to must be at least from; got [${range[0]}, ${range[1]}]`);
  }
  const excluded = new Set<number>();
  if (exclude !== undefined) {
    if (typeof exclude === "string" || !isIterable(exclude)) throw new TypeError("exclude: must be an iterable of port numbers");
    for (const p of exclude) {
      if (!Number.isSafeInteger(p)) throw new TypeError(`exclude: each port must be an integer; got ${String(p)}`);
      excluded.add(p);
    }
  }
  if (host !== undefined && (typeof host !== "string" || host === "")) {
    throw new TypeError(`host: must be an IPv4 or IPv6 address or a host name; got ${JSON.stringify(host)}`);
  }
  if (name !== undefined && (typeof name !== "string" || !SERVICE_NAME.test(name))) {
    throw new TypeError(`name: must match [A-Za-z0-9._-]{1,64} (it is the allocation's service name); got ${JSON.stringify(name)}`);
  }
  if (ttl !== undefined && (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TTL)) {
    throw new RangeError(`ttl: must be a whole number of seconds from 1 to ${MAX_TTL} (30 days); got ${String(ttl)}`);
  }
  const preferences = function* (): Iterable<number> {
    if (typeof port === "number") yield port;
    else if (port !== undefined) for (const p of port as Iterable<unknown>) yield checkPreference(p);
    if (range) for (let p = range[0]; p <= range[1]; p++) yield p;
  };
  return { preferences, exclude: excluded, host, service: name ?? defaultName(), ttl };
}

/** `node.<script name>` (the file name of the main script, without its extension), or `node`. */
export function defaultName(): string {
  const script = process.argv[1];
  if (!script) return "node";
  const base = basename(script, extname(script)).replace(/[^A-Za-z0-9._-]/g, "_");
  return `node.${base || "script"}`.slice(0, 64);
}

function text(s: string): string {
  const b = Buffer.from(s, "utf8");
  return b.length <= MAX_TEXT_BYTES ? s : b.subarray(0, MAX_TEXT_BYTES).toString("utf8").replace(/\uFFFD+$/, "");
}

/** Lease tokens of the ports this process holds from the daemon. */
const held = new Map<number, { target: Target; token: string }>();
let warned = false;

function warnNoDaemon(attempts: string[]): void {
  if (warned) return;
  warned = true;
  process.emitWarning(
    `portwarden: no daemon answered (${attempts.join("; ")}); getPort() returns ports the kernel picks ` +
      "(bound to port 0, then closed), which are not reserved: another process may take one before " +
      "you listen on it. Start `portwarden serve` or set PORTWARDEN_ADDR",
    { type: "PortwardenWarning", code: "PORTWARDEN_NO_DAEMON" },
  );
}

/** Refusals that mean "not this port" (held, in use, resting), not "not at all". */
function portTaken(e: unknown): boolean {
  return e instanceof PortwardenError && (e.status === 409 || (e.status === 400 && e.code === 9));
}

async function allocate(target: Target, c: Checked, body: Record<string, unknown>): Promise<number> {
  const got: Allocated = await call(target, "POST", "/api/ports/allocations", {
    service: c.service,
    purpose: "getPort()",
    started_by: text(process.argv.join(" ")),
    pid: process.pid,
    ...(c.ttl === undefined ? {} : { ttl_seconds: c.ttl }),
    ...body,
  });
  const port = got.allocation.port;
  held.set(port, { target, token: got.lease_token });
  return port;
}

/** The pool a preferred port belongs to, or null when the daemon does not manage it. */
function poolOf(port: number, pools: Pools): "test" | "service" | null {
  if (inRanges(port, pools.test)) return "test";
  if (inRanges(port, pools.service)) return "service";
  return null;
}

async function fromDaemon(target: Target, pools: Pools, c: Checked): Promise<number> {
  const tried = new Set<number>();
  for (const port of c.preferences()) {
    if (port === 0) break; // any port, now
    if (c.exclude.has(port) || tried.has(port)) continue;
    tried.add(port);
    const pool = poolOf(port, pools);
    if (pool === null) {
      // Not the daemon's: checked by binding, as get-port does, and not reserved.
      if (!isLocked(port) && (await isFree(port, c.host))) {
        lock(port);
        return port;
      }
      continue;
    }
    try {
      return await allocate(target, c, { port, pool });
    } catch (e) {
      if (!portTaken(e)) throw e;
    }
  }
  // Any port of the test pool; excluded answers are held until a good one comes, then given back.
  const excluded: number[] = [];
  try {
    for (let i = 0; i <= EXCLUDED_RETRIES; i++) {
      const port = await allocate(target, c, { pool: "test" });
      if (!c.exclude.has(port)) return port;
      excluded.push(port);
    }
    throw new Error(`getPort: the daemon's first ${EXCLUDED_RETRIES + 1} answers were all excluded ports`);
  } finally {
    for (const port of excluded) await releasePort(port).catch(() => false);
  }
}

async function fromKernel(c: Checked): Promise<number> {
  for (const port of c.preferences()) {
    if (port === 0) break; // any port, now
    if (!c.exclude.has(port) && !isLocked(port) && (await isFree(port, c.host))) {
      lock(port);
      return port;
    }
  }
  return kernelPort(c.exclude, c.host);
}

/**
 * A free TCP port: the first of the preferred ports (`port`, then `portRange`) that can be had,
 * else any free port, never one of `exclude`.
 *
 * From the portwarden daemon of this host (found as the portwarden CLI finds it:
 * `PORTWARDEN_ADDR`, your own Unix socket, the system one, then 127.0.0.1:7070): an allocation
 * in its test pool (or the pool a preferred port belongs to), owned by this process and taken
 * back when it exits, or after `ttl` seconds. A preferred port outside the daemon's pools is
 * checked by binding, as get-port does, and is not reserved. When no daemon answers, every port
 * is found that way (bind to port 0, then close), with one warning per process.
 *
 * Rejects with a TypeError or RangeError naming the option for bad options, and with a
 * PortwardenError when the daemon refuses (its test pool is off or full, ...).
 */
export async function getPort(options?: Options): Promise<number> {
  const c = validate(options);
  for (let round = 0; ; round++) {
    const found = await daemon(round > 0);
    if ("attempts" in found) {
      warnNoDaemon(found.attempts);
      return fromKernel(c);
    }
    try {
      return await fromDaemon(found.target, found.pools, c);
    } catch (e) {
      // The daemon went away since it was found: look again, once.
      if (!(e instanceof PortwardenError && e.status === 0) || round > 0) throw e;
    }
  }
}

/** How long "no daemon answered" is believed before the addresses are tried again. */
const ABSENT_FOR_MS = 2_000;

/** What the last look found, while the settings that find the daemon stay the same: the
 * daemon (until it stops answering), or no daemon (for ABSENT_FOR_MS). */
let known: { key: string; found: Found; until: number } | undefined;

async function daemon(again: boolean): Promise<Found> {
  const key = `${process.env.PORTWARDEN_ADDR ?? ""}\0${process.env.XDG_RUNTIME_DIR ?? ""}`;
  if (known && known.key === key && !again && Date.now() < known.until) return known.found;
  const found = await discover();
  known = { key, found, until: "attempts" in found ? Date.now() + ABSENT_FOR_MS : Infinity };
  return found;
}

export default getPort;

/**
 * Gives back a port from getPort before this process exits: the daemon's allocation is
 * released (its port is handed out again once no socket holds it), a locally checked port may
 * be returned again. Resolves to whether this process held it.
 */
export async function releasePort(port: number): Promise<boolean> {
  const lease = held.get(port);
  if (!lease) return unlock(port);
  held.delete(port);
  try {
    await call(lease.target, "DELETE", `/api/ports/allocations/${port}`, undefined, { "x-lease-token": lease.token });
  } catch (e) {
    if (e instanceof PortwardenError && e.status === 404) return true; // already taken back
    throw e;
  }
  return true;
}

/** What waitForPort takes. */
export interface WaitOptions {
  /** The one host to try (default: `127.0.0.1` and `::1`, whichever answers). */
  readonly host?: string;
  /** Milliseconds to wait in all (default 10000). */
  readonly timeout?: number;
  /** Milliseconds between rounds of attempts (default 50). */
  readonly interval?: number;
}

function connectOnce(port: number, host: string, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host });
    const timer = setTimeout(() => sock.destroy(Object.assign(new Error(`no answer within ${ms} ms`), { code: "ETIMEDOUT" })), ms);
    sock.once("connect", () => {
      clearTimeout(timer);
      sock.destroy();
      resolve();
    });
    sock.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/**
 * Waits until something accepts TCP connections on `port`, at `host` or else at 127.0.0.1 or
 * ::1 (a server may listen on either one alone). Resolves to where it answered; rejects after
 * `timeout` ms with the last error of each host.
 */
export async function waitForPort(port: number, options: WaitOptions = {}): Promise<{ port: number; host: string }> {
  checkPort("port", port);
  const { host, timeout = 10_000, interval = 50 } = options ?? {};
  if (host !== undefined && (typeof host !== "string" || host === "")) {
    throw new TypeError(`host: must be an IPv4 or IPv6 address or a host name; got ${JSON.stringify(host)}`);
  }
  if (typeof timeout !== "number" || !Number.isFinite(timeout) || timeout <= 0) {
    throw new RangeError(`timeout: must be a number of milliseconds above 0; got ${String(timeout)}`);
  }
  if (typeof interval !== "number" || !Number.isFinite(interval) || interval < 1) {
    throw new RangeError(`interval: must be a number of milliseconds of at least 1; got ${String(interval)}`);
  }
  const hosts = host === undefined ? ["127.0.0.1", "::1"] : [host];
  const deadline = Date.now() + timeout;
  const last = new Map<string, string>();
  for (;;) {
    for (const h of hosts) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      try {
        await connectOnce(port, h, Math.min(left, 1000));
        return { port, host: h };
      } catch (e) {
        last.set(h, (e as NodeJS.ErrnoException).code ?? (e as Error).message);
      }
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      const seen = hosts.map((h) => `${h.includes(":") ? `[${h}]` : h}:${port} ${last.get(h) ?? "not tried"}`).join(", ");
      throw new Error(`waitForPort: nothing accepted connections on port ${port} within ${timeout} ms (${seen})`);
    }
    await new Promise((r) => setTimeout(r, Math.min(interval, left)));
  }
}

/** Where getPort found the daemon (`unix:/path` or `http://host:port`), or null when none
 * answers. */
export async function daemonAddress(): Promise<string | null> {
  const found = await daemon(true);
  return "attempts" in found ? null : describe(found.target);
}
