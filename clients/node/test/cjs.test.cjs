// The CommonJS build, loaded with require(): the same API as the ES module build.
const assert = require("node:assert/strict");
const { test } = require("node:test");

const pw = require("../dist/cjs/index.js");

test("require() gives getPort, its default, portNumbers, waitForPort, releasePort and PortwardenError", async () => {
  for (const name of ["getPort", "portNumbers", "waitForPort", "releasePort", "daemonAddress"]) {
    assert.equal(typeof pw[name], "function", name);
  }
  assert.equal(pw.default, pw.getPort);
  assert.ok(new pw.PortwardenError("unix:/x", 429, 8, "full") instanceof Error);
  assert.deepEqual([...pw.portNumbers(4000, 4002)], [4000, 4001, 4002]);
  const esm = await import("../dist/esm/index.js");
  assert.deepEqual(Object.keys(pw).sort(), Object.keys(esm).sort());
});
