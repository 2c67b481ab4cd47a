import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * Refuses request bodies over `maxBytes` before GraphQL parses them: at once
 * from Content-Length, or mid-stream for chunked bodies. Returns false when the
 * request was refused (and answered).
 */
export function enforceBodyLimit(req: IncomingMessage, res: ServerResponse, maxBytes: number): boolean {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    refuse(res, maxBytes);
    req.resume(); // drain what the client already sent
    return false;
  }
  if (req.headers['transfer-encoding']) {
    let received = 0;
    req.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > maxBytes && !res.headersSent) {
        refuse(res, maxBytes);
        req.destroy();
      }
    });
  }
  return true;
}

function refuse(res: ServerResponse, maxBytes: number): void {
  const body = JSON.stringify({
    errors: [
      {
        message: `The request body is larger than ${maxBytes} bytes`,
        extensions: { code: 'PAYLOAD_TOO_LARGE', limit: maxBytes },
      },
    ],
  });
  res.writeHead(413, { 'content-type': 'application/json', connection: 'close' }).end(body);
}
