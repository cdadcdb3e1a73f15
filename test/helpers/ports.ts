/** A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it). */
import * as net from "node:net";

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      if (address === null || typeof address === "string") {
        server.close();
        reject(new Error("listening socket has no TCP address"));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}
