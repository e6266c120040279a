// Builds dist/: ESM (dist/esm) and CommonJS (dist/cjs, marked "type": "commonjs" so that Node
// and TypeScript read its .js and .d.ts files as CommonJS), each with its .d.ts files.
import { execFileSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
rmSync(join(root, "dist"), { recursive: true, force: true });
for (const project of ["tsconfig.json", "tsconfig.cjs.json"]) {
  execFileSync(process.execPath, [tsc, "-p", join(root, project)], { stdio: "inherit", cwd: root });
}
writeFileSync(join(root, "dist/cjs/package.json"), '{ "type": "commonjs" }\n');
