// Without a daemon: 20 ports from getPort(), then a preferred free port; prints them as JSON.
import { createServer } from "node:net";
import { getPort } from "../../dist/esm/index.js";

const ports = [];
for (let i = 0; i < 20; i++) ports.push(await getPort());
const server = createServer();
await new Promise((ok) => server.listen({ port: 0, host: "127.0.0.1" }, ok));
const busy = server.address().port;
const notBusy = await getPort({ port: busy, host: "127.0.0.1" });
server.close();
process.stdout.write(JSON.stringify({ ports, busy, notBusy }) + "\n");
