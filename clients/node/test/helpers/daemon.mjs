// A real `portwarden serve` for the tests: loopback TCP on port 0, a Unix socket and state in
// a temp dir, a test pool of its own, a namespace claim of its own. The binary is
// $PORTWARDEN_BIN, else <repo>/target/debug/portwarden (build it with `cargo build`).

import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(here, "../../../..");
export const PACKAGE = resolve(here, "../..");
export const TEST_POOL = [12000, 12999];
const START_TIMEOUT_MS = 20_000;
let started = 0;

export function binary() {
  return process.env.PORTWARDEN_BIN || join(REPO, "target/debug/portwarden");
}

/** Starts a daemon; `extra` flags go last (`["--test-range", "none"]` turns the pool off). */
export async function startDaemon(extra = []) {
  const bin = binary();
  if (!existsSync(bin)) throw new Error(`portwarden binary not found at ${bin}: run \`cargo build\` in ${REPO} or set PORTWARDEN_BIN`);
  const dir = mkdtempSync(join(tmpdir(), "pwn-"));
  const socket = join(dir, "pw.sock");
  const args = [
    "serve", "--listen", "127.0.0.1:0", "--unix-socket", socket, "--state", join(dir, "state.db"),
    "--range", "13000-13010", "--quarantine", "0s", "--portserver-socket", "none",
    "--netns-lock", `@portwarden-nodetest-${process.pid}-${started++}`,
    // One uid may hold every port here: the tests hold most of the pool at once.
    "--max-ports-per-uid", "100%",
    ...(extra.includes("--test-range") ? [] : ["--test-range", `${TEST_POOL[0]}-${TEST_POOL[1]}`]),
    ...extra,
  ];
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("PORTWARDEN_")));
  const proc = spawn(bin, args, { env, stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  const tcp = await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`portwarden did not report its TCP port in ${START_TIMEOUT_MS} ms:\n${log}`)), START_TIMEOUT_MS);
    proc.stderr.setEncoding("utf8");
    proc.stderr.on("data", (chunk) => {
      log += chunk.replace(/\x1b\[[0-9;]*m/g, "");
      const m = /listening on tcp 127\.0\.0\.1:(\d+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        ok(Number(m[1]));
      }
    });
    proc.once("exit", (code) => {
      clearTimeout(timer);
      fail(new Error(`portwarden exited (${code}) before serving:\n${log}`));
    });
  });
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!existsSync(socket)) {
    if (Date.now() > deadline) throw new Error(`portwarden did not create ${socket}:\n${log}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return {
    proc,
    socket,
    unixAddr: `unix:${socket}`,
    tcpAddr: `http://127.0.0.1:${tcp}`,
    log: () => log,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((r) => proc.once("exit", r));
        proc.kill("SIGTERM");
        const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** GET/DELETE/POST on the daemon's REST API over its Unix socket: `{status, body}`. */
export async function rest(daemon, method, path, body) {
  const http = await import("node:http");
  return new Promise((ok, fail) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      { socketPath: daemon.socket, path, method, headers: data ? { "content-type": "application/json" } : {} },
      (res) => {
        let raw = "";
        res.setEncoding("utf8");
        res.on("data", (c) => (raw += c));
        res.on("end", () => ok({ status: res.statusCode, body: raw ? JSON.parse(raw) : null }));
      },
    );
    req.on("error", fail);
    req.end(data);
  });
}

export async function allocations(daemon) {
  return (await rest(daemon, "GET", "/api/ports/allocations")).body.allocations;
}

/** Polls `check` every 50 ms until it returns true, or fails after `ms`. */
export async function eventually(check, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
