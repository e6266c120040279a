// Per-call cost of getPort() in Node, one way per run: prints the total seconds, then each
// call's seconds. Run by bench/testclients.rs; the daemon is $PORTWARDEN_ADDR.
//
//   node getport.mjs MODE N PORTWARDEN_DIST GET_PORT_DIR
//
// MODE: portwarden (getPort() from the daemon's test pool), fallback (portwarden's getPort()
// with no daemon: bind(0), then close), get-port (get-port's getPort(), from npm), bind0 (a bare
// net.Server listening on port 0, then closed).
import { createServer } from "node:net";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [mode, nText, dist, getPortDir] = process.argv.slice(2);
const n = Number(nText);
const WARMUP = 20;
let call;
if (mode === "portwarden" || mode === "fallback") {
  const pw = await import(pathToFileURL(join(dist, "esm/index.js")).href);
  process.removeAllListeners("warning"); // the fallback's one warning
  call = () => pw.getPort();
  if (mode === "fallback" && !process.env.PORTWARDEN_ADDR.endsWith("absent.sock")) throw new Error("a daemon is configured");
  if (mode === "portwarden" && (await pw.daemonAddress()) === null) throw new Error("no daemon");
} else if (mode === "get-port") {
  const gp = await import(pathToFileURL(join(getPortDir, "node_modules/get-port/index.js")).href);
  call = () => gp.default();
} else if (mode === "bind0") {
  call = () =>
    new Promise((ok, fail) => {
      const s = createServer();
      s.on("error", fail);
      s.listen(0, () => {
        s.address();
        s.close(ok);
      });
    });
} else {
  throw new Error(`unknown mode ${mode}`);
}
for (let i = 0; i < WARMUP; i++) await call();
const lat = [];
const t0 = process.hrtime.bigint();
for (let i = 0; i < n; i++) {
  const t = process.hrtime.bigint();
  await call();
  lat.push(Number(process.hrtime.bigint() - t) / 1e9);
}
const total = Number(process.hrtime.bigint() - t0) / 1e9;
console.log([total, ...lat].join(" "));
