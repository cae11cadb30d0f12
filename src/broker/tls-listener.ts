import { createServer, type Server, type TLSSocket } from 'node:tls'

/** TlsListenerOptions configure the mutual-TLS listener. */
export interface TlsListenerOptions {
  readonly certPem: string
  readonly keyPem: string
  /** PEM bundle of the factory CAs whose device certificates may connect. */
  readonly clientCaPem: string
  readonly maxConnections: number
  readonly handshakeTimeoutMs: number
}

/**
 * createTlsListener makes a TLS 1.2+ server that requires and verifies a client certificate, so no MQTT byte
 * is read from a connection without a verified factory certificate.
 */
export function createTlsListener(
  options: TlsListenerOptions,
  onConnection: (socket: TLSSocket) => void,
): Server {
  const server = createServer(
    {
      key: options.keyPem,
      cert: options.certPem,
      ca: options.clientCaPem,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      handshakeTimeout: options.handshakeTimeoutMs,
      // without it, small MQTT packets wait ~40 ms for Nagle's algorithm
      noDelay: true,
    },
    (socket) => {
      socket.setNoDelay(true)
      onConnection(socket)
    },
  )
  server.maxConnections = options.maxConnections
  return server
}
