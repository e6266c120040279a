// getPort against a real daemon: ports from its test pool, owned by the asking process and
// taken back when it exits; preferences, exclude, name and ttl as get-port users expect.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { after, before, describe, test } from "node:test";

import getPortDefault, { getPort, portNumbers, releasePort, daemonAddress, PortwardenError } from "../dist/esm/index.js";
import { TEST_POOL, allocations, eventually, rest, startDaemon } from "./helpers/daemon.mjs";

const PROCESSES = 16;
const PER_PROCESS = 50;
const inPool = (p) => TEST_POOL[0] <= p && p <= TEST_POOL[1];

let daemon;
before(async () => {
  daemon = await startDaemon();
  process.env.PORTWARDEN_ADDR = daemon.unixAddr;
});
after(async () => {
  delete process.env.PORTWARDEN_ADDR;
  await daemon?.stop();
});

async function allocation(port) {
  return rest(daemon, "GET", `/api/ports/allocations/${port}`);
}

/** A server listening on `port` (0: any) at 127.0.0.1 for the duration of `fn`. */
async function listening(port, fn) {
  const server = createServer();
  await new Promise((ok, fail) => server.once("error", fail).listen({ port, host: "127.0.0.1" }, ok));
  try {
    return await fn(server.address().port);
  } finally {
    await new Promise((ok) => server.close(ok));
  }
}

test(`${PROCESSES} processes x ${PER_PROCESS} ports: all distinct, in the test pool, owned by each process, taken back when it exits`, async () => {
  const children = [];
  for (let i = 0; i < PROCESSES; i++) {
    const child = spawn(process.execPath, [new URL("./helpers/hold.mjs", import.meta.url).pathname, String(PER_PROCESS)], {
      env: { ...process.env, PORTWARDEN_ADDR: daemon.unixAddr },
      stdio: ["pipe", "pipe", "inherit"],
    });
    const line = new Promise((ok, fail) => {
      let out = "";
      child.stdout.setEncoding("utf8");
      child.stdout.on("data", (c) => {
        out += c;
        if (out.includes("\n")) ok(JSON.parse(out));
      });
      child.once("exit", (code) => fail(new Error(`a holder exited (${code}) before answering`)));
    });
    children.push({ child, line, exited: new Promise((ok) => child.once("exit", ok)) });
  }
  const got = await Promise.all(children.map((c) => c.line));
  try {
    const ports = got.flatMap((g) => g.ports);
    assert.equal(ports.length, PROCESSES * PER_PROCESS);
    assert.equal(new Set(ports).size, ports.length, "a port was handed out twice");
    assert.ok(ports.every(inPool), `ports outside the test pool: ${ports.filter((p) => !inPool(p))}`);
    const owners = new Map((await allocations(daemon)).map((a) => [a.port, a]));
    for (const g of got) {
      for (const p of g.ports) {
        assert.equal(owners.get(p)?.pid, g.pid, `port ${p} is not owned by process ${g.pid}`);
        assert.equal(owners.get(p)?.service, "node.hold");
      }
    }
  } finally {
    for (const c of children) c.child.stdin.end();
    await Promise.all(children.map((c) => c.exited));
  }
  const pids = new Set(got.map((g) => g.pid));
  await eventually(async () => !(await allocations(daemon)).some((a) => pids.has(a.pid)), 10_000, "ports of the exited processes taken back");
});

test("a port comes from the daemon's test pool and is this process's; releasePort gives it back", async () => {
  const port = await getPort();
  assert.ok(inPool(port), String(port));
  const { body } = await allocation(port);
  assert.equal(body.pid, process.pid);
  assert.equal(body.service, "node.getport.test");
  assert.equal(body.purpose, "getPort()");
  assert.equal(await releasePort(port), true);
  assert.equal((await allocation(port)).status, 404);
  assert.equal(await releasePort(port), false, "not held any more");
  assert.equal(getPortDefault, getPort);
  assert.equal(await daemonAddress(), daemon.unixAddr);
});

test("a preferred port in the test pool is allocated; a held one is passed over for the next", async () => {
  const first = await getPort({ port: 12500 });
  assert.equal(first, 12500);
  assert.equal((await allocation(12500)).body.pid, process.pid);
  assert.equal(await getPort({ port: [12500, 12501] }), 12501);
  assert.equal(await getPort({ port: portNumbers(12500, 12510) }), 12502);
  assert.equal(await getPort({ port: 12500, portRange: [12501, 12505] }), 12503, "portRange comes after port");
  const outside = await listening(0, async (p) => p); // free, and not the daemon's
  const any = await getPort({ port: [12500, 0, outside], host: "127.0.0.1" });
  assert.ok(inPool(any), `0 is any port, there and then (as in get-port); got ${any}`);
  await releasePort(any);
  for (const p of [12500, 12501, 12502, 12503]) await releasePort(p);
});

test("a preferred port in use by another program is passed over, the next preference or any port taken", async () => {
  await listening(12600, async (busy) => {
    assert.equal(await getPort({ port: [busy, 12601] }), 12601);
    const any = await getPort({ port: busy });
    assert.notEqual(any, busy);
    assert.ok(inPool(any));
    await releasePort(12601);
    await releasePort(any);
  });
});

test("a preferred port outside the daemon's pools is checked by binding, as get-port does, and not allocated", async () => {
  const free = await listening(0, async (p) => p); // a port the kernel just gave and took back
  assert.equal(await getPort({ port: free, host: "127.0.0.1" }), free);
  assert.ok(!(await allocations(daemon)).some((a) => a.port === free), "not the daemon's");
  assert.notEqual(await getPort({ port: free, host: "127.0.0.1" }), free, "handed out once, as get-port locks it");
  assert.equal(await releasePort(free), true);
  await listening(0, async (busy) => {
    const got = await getPort({ port: busy, host: "127.0.0.1" });
    assert.notEqual(got, busy);
    assert.ok(inPool(got), "then any port of the pool");
  });
});

test("a preferred port in the services' range comes from that pool", async () => {
  const port = await getPort({ port: 13005 });
  assert.equal(port, 13005);
  const { body } = await allocation(port);
  assert.equal(body.pid, process.pid);
  await releasePort(port);
});

test("exclude holds for preferences and for the daemon's answer", async () => {
  assert.equal(await getPort({ port: [12700, 12701], exclude: [12700] }), 12701);
  await releasePort(12701);
  // The daemon gives a service its last port back when it is free: excluding it must still
  // give another one, and the excluded one must not stay allocated.
  const sticky = await getPort({ name: "node.sticky" });
  await releasePort(sticky);
  const other = await getPort({ name: "node.sticky", exclude: [sticky] });
  assert.notEqual(other, sticky);
  assert.equal((await allocation(sticky)).status, 404, "the excluded answer was given back");
  await releasePort(other);
});

test("name is the service and ttl the lease", async () => {
  const port = await getPort({ name: "web.frontend", ttl: 120 });
  const { body } = await allocation(port);
  assert.equal(body.service, "web.frontend");
  assert.equal(body.ttl_seconds, 120);
  assert.equal(body.pid, process.pid, "owned by the process and by the lease");
  await releasePort(port);
});

test("bad options are refused, naming the option and the rule", async () => {
  const cases = [
    [{ port: -1 }, RangeError, /^port: each port must be an integer from 1 to 65535 \(or 0: any port\); got -1$/],
    [{ port: "3000" }, TypeError, /^port: must be a port number or an iterable of port numbers$/],
    [{ port: [3000, 70000] }, RangeError, /^port: each port must be an integer from 1 to 65535 \(or 0: any port\); got 70000$/],
    [{ portRange: [0, 10] }, RangeError, /^portRange: each port must be an integer from 1 to 65535; got 0$/],
    [{ portRange: [3000] }, TypeError, /^portRange: must be \[from, to\]$/],
    [{ portRange: [3010, 3000] }, RangeError, /^portRange: to must be at least from; got \[3010, 3000\]$/],
    [{ exclude: 3000 }, TypeError, /^exclude: must be an iterable of port numbers$/],
    [{ exclude: [1.5] }, TypeError, /^exclude: each port must be an integer; got 1\.5$/],
    [{ host: "" }, TypeError, /^host: must be an IPv4 or IPv6 address or a host name; got ""$/],
    [{ name: "bad name" }, TypeError, /^name: must match \[A-Za-z0-9._-\]\{1,64\} \(it is the allocation's service name\); got "bad name"$/],
    [{ name: "x".repeat(65) }, TypeError, /^name: must match/],
    [{ ttl: 0 }, RangeError, /^ttl: must be a whole number of seconds from 1 to 2592000 \(30 days\); got 0$/],
    [{ ttl: 1.5 }, RangeError, /^ttl: /],
  ];
  for (const [options, type, message] of cases) {
    await assert.rejects(getPort(options), (e) => e instanceof type && message.test(e.message), JSON.stringify(options));
  }
  assert.throws(() => portNumbers(1000, 2000), /^RangeError: portNumbers: from must be from 1024 to 65535; got 1000$/);
  assert.throws(() => portNumbers(3000, 2000), /^RangeError: portNumbers: to must be at least from; got 3000 to 2000$/);
  assert.throws(() => portNumbers(3000.5, 4000), /^TypeError: portNumbers: from and to must be integers/);
  assert.deepEqual([...portNumbers(3000, 3003)], [3000, 3001, 3002, 3003]);
});

test("over loopback TCP too", async () => {
  process.env.PORTWARDEN_ADDR = daemon.tcpAddr;
  try {
    const port = await getPort();
    assert.ok(inPool(port));
    assert.equal((await allocation(port)).body.pid, process.pid);
    assert.equal(await daemonAddress(), daemon.tcpAddr);
    await releasePort(port);
  } finally {
    process.env.PORTWARDEN_ADDR = daemon.unixAddr;
  }
});

describe("a daemon without a test pool", () => {
  let off;
  before(async () => {
    off = await startDaemon(["--test-range", "none"]);
  });
  after(() => off?.stop());

  test("refuses, and getPort says so instead of picking a port of its own", async () => {
    process.env.PORTWARDEN_ADDR = off.unixAddr;
    try {
      await assert.rejects(getPort(), (e) => {
        assert.ok(e instanceof PortwardenError);
        assert.equal(e.status, 400);
        assert.match(e.message, new RegExp(`^portwarden daemon at unix:${off.socket}: invalid request: pool: the test pool is off on this daemon`));
        return true;
      });
    } finally {
      process.env.PORTWARDEN_ADDR = daemon.unixAddr;
    }
  });
});

test("a daemon that stops is looked for again, then fallen back from with one warning", async () => {
  const gone = await startDaemon();
  process.env.PORTWARDEN_ADDR = gone.unixAddr;
  const warnings = [];
  const onWarning = (w) => warnings.push(w);
  process.on("warning", onWarning);
  try {
    const first = await getPort();
    assert.ok(inPool(first));
    await gone.stop();
    const second = await getPort();
    const third = await getPort();
    assert.equal(new Set([first, second, third]).size, 3);
    assert.equal(await daemonAddress(), null);
    await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
    const ours = warnings.filter((w) => w.code === "PORTWARDEN_NO_DAEMON");
    assert.equal(ours.length, 1);
    assert.match(ours[0].message, new RegExp(`^portwarden: no daemon answered \\(no socket at ${gone.socket}\\); getPort\\(\\) returns ports the kernel picks`));
  } finally {
    process.off("warning", onWarning);
    process.env.PORTWARDEN_ADDR = daemon.unixAddr;
  }
});
