// With no daemon answering, getPort finds ports as get-port does and warns once per process;
// the daemon is looked for where the portwarden CLI looks.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { promisify } from "node:util";

import { candidates } from "../dist/esm/target.js";

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), "pwn-"));
after(() => rmSync(dir, { recursive: true, force: true }));

async function fallback(addr) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("PORTWARDEN_")));
  const { stdout, stderr } = await run(process.execPath, [new URL("./helpers/fallback.mjs", import.meta.url).pathname], {
    env: { ...env, PORTWARDEN_ADDR: addr, XDG_RUNTIME_DIR: dir },
    timeout: 30_000,
  });
  return { ...JSON.parse(stdout), stderr };
}

test("no daemon: kernel-picked ports, distinct, with one warning naming why", async () => {
  const absent = join(dir, "absent.sock");
  const got = await fallback(`unix:${absent}`);
  assert.equal(new Set(got.ports).size, 20, "a port was handed out twice");
  assert.ok(got.ports.every((p) => Number.isInteger(p) && p > 0 && p < 65536));
  assert.notEqual(got.notBusy, got.busy, "a preferred port in use is passed over");
  assert.equal(got.stderr.split("PortwardenWarning").length - 1, 1, got.stderr);
  assert.ok(
    got.stderr.includes(
      `[PORTWARDEN_NO_DAEMON] PortwardenWarning: portwarden: no daemon answered (no socket at ${absent}); getPort() returns ports the kernel picks ` +
        "(bound to port 0, then closed), which are not reserved: another process may take one before you listen on it. " +
        "Start `portwarden serve` or set PORTWARDEN_ADDR",
    ),
    got.stderr,
  );
});

test("nothing listening on a TCP address, or an https one, is no daemon too", async () => {
  const tcp = await fallback("http://127.0.0.1:1");
  assert.match(tcp.stderr, /no daemon answered \(nothing listens at http:\/\/127\.0\.0\.1:1 \(connection refused\)\)/);
  const tls = await fallback("https://127.0.0.1:1");
  assert.match(tls.stderr, /no daemon answered \(https:\/\/127\.0\.0\.1:1: not used: a daemon reached over https serves another host/);
});

test("the daemon is looked for where the CLI looks", () => {
  const saved = { ...process.env };
  try {
    process.env.PORTWARDEN_ADDR = "unix:///run/x.sock";
    assert.deepEqual(candidates(), { targets: [{ kind: "unix", path: "/run/x.sock" }], explicit: true });
    process.env.PORTWARDEN_ADDR = "127.0.0.1:9";
    assert.deepEqual(candidates().targets, [{ kind: "tcp", host: "127.0.0.1", port: 9, url: "http://127.0.0.1:9" }]);
    process.env.PORTWARDEN_ADDR = "ftp://x";
    assert.throws(() => candidates(), /^TypeError: PORTWARDEN_ADDR: "ftp:\/\/x" is not an address: expected unix:\/PATH, http:\/\/HOST:PORT or HOST:PORT$/);
    delete process.env.PORTWARDEN_ADDR;
    process.env.XDG_RUNTIME_DIR = "/run/user/1000";
    const tcp = { kind: "tcp", host: "127.0.0.1", port: 7070, url: "http://127.0.0.1:7070" };
    const system = { kind: "unix", path: "/run/portwarden/portwarden.sock" };
    const expected =
      process.geteuid() === 0
        ? [system, tcp] // root's own socket is the system one
        : [{ kind: "unix", path: "/run/user/1000/portwarden.sock" }, system, tcp];
    assert.deepEqual(candidates(), { targets: expected, explicit: false });
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
});
