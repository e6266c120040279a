// Ports checked here, by binding, as get-port does: a preferred port that no daemon manages,
// and every port when no daemon answers. Nothing here is reserved: another process may take
// the port between the check and your listen().

import * as net from "node:net";
import * as os from "node:os";

/** How long a port handed out by a local check is not handed out again by this process
 * (get-port's lock: 15 to 30 s). */
export const LOCK_MS = 15_000;

let young = new Set<number>();
let old = new Set<number>();
let rotation: NodeJS.Timeout | undefined;

/** Marks `port` as handed out (until it ages out, or unlock). */
export function lock(port: number): void {
  if (rotation === undefined) {
    rotation = setInterval(() => {
      old = young;
      young = new Set();
      if (old.size === 0) {
        clearInterval(rotation);
        rotation = undefined;
      }
    }, LOCK_MS);
    rotation.unref();
  }
  young.add(port);
}

export function isLocked(port: number): boolean {
  return young.has(port) || old.has(port);
}

export function unlock(port: number): boolean {
  const had = isLocked(port);
  young.delete(port);
  old.delete(port);
  return had;
}

/** Listens on `port` (0: the kernel picks) at `host` (undefined: every address), closes, and
 * gives the port that was bound. */
function listenOnce(port: number, host: string | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen({ port, host, exclusive: true }, () => {
      const bound = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(bound));
    });
  });
}

/** The addresses get-port checks when no host is given: the default (every address), 0.0.0.0,
 * and each interface's own. */
function localHosts(): (string | undefined)[] {
  const hosts = new Set<string | undefined>([undefined, "0.0.0.0"]);
  for (const addrs of Object.values(os.networkInterfaces())) {
    for (const a of addrs ?? []) hosts.add(a.address);
  }
  return [...hosts];
}

const IN_USE = new Set(["EADDRINUSE", "EACCES"]);
const ABSENT = new Set(["EADDRNOTAVAIL", "EINVAL", "EAFNOSUPPORT"]);

/** Whether `port` can be bound now at `host` (or on every local address). */
export async function isFree(port: number, host?: string): Promise<boolean> {
  for (const h of host === undefined ? localHosts() : [host]) {
    try {
      await listenOnce(port, h);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? "";
      if (IN_USE.has(code)) return false;
      if (!ABSENT.has(code) || host !== undefined) throw e;
    }
  }
  return true;
}

/** A port the kernel picks (bind to port 0, then close), not in `exclude` nor handed out by
 * this process lately. */
export async function kernelPort(exclude: Set<number>, host?: string, tries = 64): Promise<number> {
  for (let i = 0; i < tries; i++) {
    const port = await listenOnce(0, host);
    if (!exclude.has(port) && !isLocked(port)) {
      lock(port);
      return port;
    }
  }
  throw new Error(`no free port from the kernel in ${tries} tries outside the excluded ports`);
}
