// `npm pack` makes a tarball that installs into a project of its own and works there with
// import, require and TypeScript (NodeNext from an ES module and a CommonJS file; Node10).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";

import { PACKAGE, TEST_POOL, startDaemon } from "./helpers/daemon.mjs";

const run = promisify(execFile);
const npm = process.platform === "win32" ? "npm.cmd" : "npm";
const dir = mkdtempSync(join(tmpdir(), "pwn-pack-"));
const project = join(dir, "consumer");
let daemon;
let packed;

before(async () => {
  daemon = await startDaemon();
  // dist/ is built already (npm run build): a build here could race the other test files.
  const { stdout } = await run(npm, ["pack", "--ignore-scripts", "--json", "--pack-destination", dir], { cwd: PACKAGE, timeout: 120_000 });
  packed = JSON.parse(stdout)[0];
  mkdirSync(project);
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "consumer", version: "1.0.0", private: true }));
  await run(npm, ["install", "--offline", "--no-audit", "--no-fund", "--no-package-lock", join(dir, packed.filename)], { cwd: project, timeout: 120_000 });
});
after(async () => {
  await daemon?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test("the tarball holds the two builds, their types, the README and nothing else", () => {
  const files = packed.files.map((f) => f.path).sort();
  for (const f of ["README.md", "package.json", "dist/esm/index.js", "dist/esm/index.d.ts", "dist/cjs/index.js", "dist/cjs/index.d.ts", "dist/cjs/package.json"]) {
    assert.ok(files.includes(f), `${f} missing from ${files}`);
  }
  assert.deepEqual(files.filter((f) => !f.startsWith("dist/") && f !== "README.md" && f !== "package.json"), []);
  assert.equal(packed.name, "portwarden");
});

async function node(file, source) {
  writeFileSync(join(project, file), source);
  const { stdout } = await run(process.execPath, [file], { cwd: project, env: { ...process.env, PORTWARDEN_ADDR: daemon.unixAddr }, timeout: 30_000 });
  return JSON.parse(stdout);
}

test("installed, it works with import and with require", async () => {
  const esm = await node("esm.mjs", 'import getPort, { portNumbers } from "portwarden";\nconsole.log(JSON.stringify({ port: await getPort({ name: "consumer.esm" }), n: [...portNumbers(5000, 5001)] }));\n');
  const cjs = await node("cjs.cjs", 'const { getPort } = require("portwarden");\ngetPort({ name: "consumer.cjs" }).then((port) => console.log(JSON.stringify({ port })));\n');
  for (const { port } of [esm, cjs]) assert.ok(TEST_POOL[0] <= port && port <= TEST_POOL[1], String(port));
  assert.deepEqual(esm.n, [5000, 5001]);
});

test("its types check from an ES module and a CommonJS file (NodeNext), and under Node10 resolution", async () => {
  writeFileSync(
    join(project, "tsconfig.json"),
    JSON.stringify({ compilerOptions: { module: "NodeNext", moduleResolution: "NodeNext", strict: true, noEmit: true, types: [], target: "ES2022", lib: ["ES2022"] }, files: ["a.mts", "b.cts"] }),
  );
  writeFileSync(
    join(project, "a.mts"),
    [
      'import getPort, { portNumbers, waitForPort, releasePort, PortwardenError, type Options } from "portwarden";',
      'const o: Options = { port: portNumbers(3000, 3010), portRange: [4000, 4010], exclude: [3001], host: "127.0.0.1", name: "web", ttl: 60 };',
      "const p: Promise<number> = getPort(o);",
      "const w: Promise<{ port: number; host: string }> = waitForPort(3000, { timeout: 1000 });",
      "const r: Promise<boolean> = releasePort(3000);",
      "const code: number = new PortwardenError('unix:/x', 429, 8, 'full').code;",
      "// @ts-expect-error ttl is seconds, a number",
      'getPort({ ttl: "60" });',
      "export { p, w, r, code };",
      "",
    ].join("\n"),
  );
  writeFileSync(
    join(project, "b.cts"),
    [
      'import portwarden = require("portwarden");',
      "const p: Promise<number> = portwarden.getPort({ exclude: [1] });",
      "// @ts-expect-error no such option",
      "portwarden.getPort({ nope: 1 });",
      "export = p;",
      "",
    ].join("\n"),
  );
  // And a project still on the older resolution (module CommonJS, Node10), which reads the
  // top-level "types".
  writeFileSync(
    join(project, "tsconfig.node10.json"),
    JSON.stringify({ compilerOptions: { module: "CommonJS", moduleResolution: "Node10", strict: true, noEmit: true, types: [], target: "ES2022", lib: ["ES2022"] }, files: ["c.ts"] }),
  );
  writeFileSync(join(project, "c.ts"), 'import { getPort } from "portwarden";\nexport const p: Promise<number> = getPort({ port: 3000 });\n');
  const tsc = join(PACKAGE, "node_modules/typescript/bin/tsc");
  for (const config of ["tsconfig.json", "tsconfig.node10.json"]) {
    await run(process.execPath, [tsc, "-p", join(project, config)], { cwd: project, timeout: 120_000 }).catch((e) => {
      assert.fail(`tsc -p ${config} found errors:\n${e.stdout}${e.stderr}`);
    });
  }
});
