// A loopback TCP proxy that passes TLS through untouched and drops one connection just before the
// server's response reaches the client: the first connection whose client sent a large request
// and whose server then starts a large record. It reads only TLS record headers (RFC 8446 5.1),
// which are not encrypted, so it needs no keys.
import { createServer, Socket } from "node:net";

/** TLS record content type of application data, which also carries TLS 1.3 handshake messages. */
const APPLICATION_DATA = 0x17;
const RECORD_HEADER_BYTES = 5;

/**
 * Sizes that single out the redeem, in TLS record bytes. Measured with Bun 1.4.5 and Node 20 as
 * client and server: the client's Finished and roots GET add up to at most 234 bytes, and its
 * Finished and redeem POST to at least 673. Session tickets are at most 386 bytes, and the redeem
 * response is about 4000.
 */
export interface CutThresholds {
  /** Application data the client must have sent: a POST with a CSR, not a GET. */
  requestBytes: number;
  /** Smallest server record taken for the response. */
  responseBytes: number;
}

export interface TlsCutProxy {
  /** https://127.0.0.1:PORT of the proxy. */
  url: string;
  /** Connections accepted so far. */
  connections: number;
  /** Resolves once a connection was dropped. */
  cut: Promise<void>;
  close(): Promise<void>;
}

/** Splits a byte stream into whole TLS records; a partial record waits for the next chunk. */
function recordSplitter(): (chunk: Buffer) => Buffer[] {
  let pending = Buffer.alloc(0);
  return (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    const records: Buffer[] = [];
    while (pending.length >= RECORD_HEADER_BYTES) {
      const size = RECORD_HEADER_BYTES + pending.readUInt16BE(3);
      if (pending.length < size) break;
      records.push(pending.subarray(0, size));
      pending = pending.subarray(size);
    }
    return records;
  };
}

/** Starts the proxy on 127.0.0.1 in front of a TLS server on 127.0.0.1:`targetPort`. */
export async function startTlsCutProxy(
  targetPort: number,
  thresholds: CutThresholds = { requestBytes: 450, responseBytes: 1000 },
): Promise<TlsCutProxy> {
  const sockets = new Set<Socket>();
  let markCut: () => void = () => {};
  let armed = true;
  const proxy: TlsCutProxy = {
    url: "",
    connections: 0,
    cut: new Promise<void>((resolve) => {
      markCut = resolve;
    }),
    close: async () => {},
  };

  const server = createServer((client) => {
    proxy.connections += 1;
    const upstream = new Socket();
    upstream.connect(targetPort, "127.0.0.1");
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => {
        client.destroy();
        upstream.destroy();
      });
    }
    let clientApplicationBytes = 0;
    const fromClient = recordSplitter();
    const fromServer = recordSplitter();

    client.on("data", (chunk: Buffer) => {
      for (const record of fromClient(chunk)) {
        if (record[0] === APPLICATION_DATA) clientApplicationBytes += record.length;
        upstream.write(record);
      }
    });
    upstream.on("data", (chunk: Buffer) => {
      for (const record of fromServer(chunk)) {
        const isResponse =
          record[0] === APPLICATION_DATA &&
          record.length >= thresholds.responseBytes &&
          clientApplicationBytes >= thresholds.requestBytes;
        if (armed && isResponse) {
          armed = false;
          client.destroy();
          upstream.destroy();
          markCut();
          return;
        }
        client.write(record);
      }
    });
    client.on("end", () => upstream.end());
    upstream.on("end", () => client.end());
  });

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  proxy.url = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
  proxy.close = () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    });
  return proxy;
}
