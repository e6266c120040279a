// waitForPort: real listeners on 127.0.0.1 or ::1 alone, one that comes late, and none.
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { test } from "node:test";

import { waitForPort } from "../dist/esm/index.js";

function listen(host, port = 0) {
  const server = createServer((s) => s.destroy());
  return new Promise((ok, fail) => server.once("error", fail).listen({ port, host }, () => ok(server)));
}
const close = (server) => new Promise((ok) => server.close(ok));

async function ipv6Loopback() {
  try {
    await close(await listen("::1"));
    return true;
  } catch {
    return false;
  }
}

test("a server on 127.0.0.1 alone is found", async () => {
  const server = await listen("127.0.0.1");
  try {
    assert.deepEqual(await waitForPort(server.address().port, { timeout: 2000 }), { port: server.address().port, host: "127.0.0.1" });
  } finally {
    await close(server);
  }
});

test("a server on ::1 alone is found", { skip: !(await ipv6Loopback()) && "this host has no IPv6 loopback" }, async () => {
  const server = await listen("::1");
  try {
    assert.deepEqual(await waitForPort(server.address().port, { timeout: 2000 }), { port: server.address().port, host: "::1" });
  } finally {
    await close(server);
  }
});

test("a server that starts later is waited for", async () => {
  const probe = await listen("127.0.0.1");
  const port = probe.address().port;
  await close(probe);
  let late;
  const timer = setTimeout(async () => (late = await listen("127.0.0.1", port)), 300);
  try {
    const t0 = Date.now();
    assert.equal((await waitForPort(port, { timeout: 5000, interval: 20 })).host, "127.0.0.1");
    assert.ok(Date.now() - t0 >= 250, "it answered before the server started");
  } finally {
    clearTimeout(timer);
    if (late) await close(late);
  }
});

test("nothing listening: rejected after the timeout, naming both hosts", async () => {
  const probe = await listen("127.0.0.1");
  const port = probe.address().port;
  await close(probe);
  const t0 = Date.now();
  await assert.rejects(
    waitForPort(port, { timeout: 300 }),
    new RegExp(`^Error: waitForPort: nothing accepted connections on port ${port} within 300 ms \\(127\\.0\\.0\\.1:${port} ECONNREFUSED, \\[::1\\]:${port} E[A-Z]+\\)$`),
  );
  const took = Date.now() - t0;
  assert.ok(took >= 290 && took < 2000, `took ${took} ms`);
});

test("a host given is the only one tried; bad arguments are refused by name", async () => {
  const server = await listen("127.0.0.1");
  try {
    await assert.rejects(waitForPort(server.address().port, { host: "::1", timeout: 200 }), /within 200 ms \(\[::1\]:\d+ E[A-Z]+\)$/);
  } finally {
    await close(server);
  }
  await assert.rejects(waitForPort(0), /^RangeError: port: each port must be an integer from 1 to 65535; got 0$/);
  await assert.rejects(waitForPort(80, { timeout: -1 }), /^RangeError: timeout: must be a number of milliseconds above 0; got -1$/);
  await assert.rejects(waitForPort(80, { host: "" }), /^TypeError: host: /);
});
