// Where the daemon is, in the order the portwarden CLI looks: PORTWARDEN_ADDR alone when set,
// else this user's own Unix socket, the system daemon's socket, then http://127.0.0.1:7070.

import { lstatSync } from "node:fs";
import { dirname, join } from "node:path";

/** The TCP address the daemon listens on by default. */
export const DEFAULT_TCP_ADDR = "http://127.0.0.1:7070";
/** The system daemon's Unix socket. */
export const SYSTEM_SOCKET = "/run/portwarden/portwarden.sock";

/** A daemon address: a Unix socket path, an HTTP host and port, or an `https://` address,
 * which this package does not use (a daemon that needs TLS serves another host's ports). */
export type Target =
  | { kind: "unix"; path: string }
  | { kind: "tcp"; host: string; port: number; url: string }
  | { kind: "tls"; url: string };

/** `unix:/path`, `http://host:port`, `host:port` or `https://host:port`. */
export function parseTarget(addr: string): Target {
  if (addr.startsWith("unix:")) {
    let path = addr.slice("unix:".length);
    while (path.startsWith("//")) path = path.slice(2); // unix:///abs/path
    if (!path) throw new TypeError(`PORTWARDEN_ADDR: ${JSON.stringify(addr)} names no socket path`);
    return { kind: "unix", path };
  }
  const withScheme = addr.includes("://") ? addr : `http://${addr}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new TypeError(
      `PORTWARDEN_ADDR: ${JSON.stringify(addr)} is not an address: expected unix:/PATH, http://HOST:PORT or HOST:PORT`,
    );
  }
  if (url.protocol === "https:") return { kind: "tls", url: `https://${url.host}` };
  if (url.protocol !== "http:") {
    throw new TypeError(
      `PORTWARDEN_ADDR: ${JSON.stringify(addr)} is not an address: expected unix:/PATH, http://HOST:PORT or HOST:PORT`,
    );
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = url.port ? Number(url.port) : 80;
  return { kind: "tcp", host, port, url: `http://${url.host}` };
}

export function describe(target: Target): string {
  return target.kind === "unix" ? `unix:${target.path}` : target.url;
}

function euid(): number {
  return typeof process.geteuid === "function" ? process.geteuid() : -1;
}

/** `/tmp/portwarden-$UID`: the user's socket directory when there is no XDG_RUNTIME_DIR. */
export function fallbackDir(uid: number = euid()): string {
  return `/tmp/portwarden-${uid}`;
}

/** The daemon's default socket for this user: the system one as root, else
 * `$XDG_RUNTIME_DIR/portwarden.sock`, else `/tmp/portwarden-$UID/portwarden.sock`. */
export function defaultSocketPath(): string {
  const uid = euid();
  if (uid === 0) return SYSTEM_SOCKET;
  const runtime = process.env.XDG_RUNTIME_DIR;
  return runtime ? join(runtime, "portwarden.sock") : join(fallbackDir(uid), "portwarden.sock");
}

/** Every address to try, in order, and whether it was named (an explicit address is tried
 * even when its socket file is missing, so that the error says so). */
export function candidates(): { targets: Target[]; explicit: boolean } {
  const env = process.env.PORTWARDEN_ADDR;
  if (env) return { targets: [parseTarget(env)], explicit: true };
  const own = defaultSocketPath();
  const targets: Target[] = [{ kind: "unix", path: own }];
  if (own !== SYSTEM_SOCKET) targets.push({ kind: "unix", path: SYSTEM_SOCKET });
  targets.push(parseTarget(DEFAULT_TCP_ADDR));
  return { targets, explicit: false };
}

/** Why the socket `path` must not be used, or null. Inside the shared /tmp fallback directory,
 * another user could have made the directory first and put a fake daemon there: the directory
 * must be this user's, a real directory with no access for others, and so must the socket be
 * this user's. Other paths are not checked. */
export function checkSocket(path: string): string | null {
  const uid = euid();
  const dir = fallbackDir(uid);
  if (dirname(path) !== dir) return null;
  let st;
  try {
    st = lstatSync(dir);
  } catch (e) {
    return `${dir}: ${(e as Error).message}`;
  }
  if (!st.isDirectory()) return `${dir} is not a directory`;
  if (st.uid !== uid) return `${dir} belongs to uid ${st.uid}, not to you (uid ${uid})`;
  if (st.mode & 0o077) return `${dir} is open to other users (mode ${(st.mode & 0o7777).toString(8)}); it must be 0700`;
  try {
    const sock = lstatSync(path);
    if (sock.uid !== uid) return `${path} belongs to uid ${sock.uid}, not to you (uid ${uid})`;
  } catch {
    // not there: connecting says so
  }
  return null;
}
