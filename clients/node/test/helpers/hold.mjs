// Takes N ports with getPort() (argv[2]), prints {"pid","ports"} on one line, and holds them
// until its standard input closes.
import { getPort } from "../../dist/esm/index.js";

const n = Number(process.argv[2]);
const ports = [];
for (let i = 0; i < n; i++) ports.push(await getPort());
process.stdout.write(JSON.stringify({ pid: process.pid, ports }) + "\n");
process.stdin.resume();
process.stdin.on("end", () => process.exit(0));
