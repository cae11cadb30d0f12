import { createServer, type Server, type TLSSocket } from 'node:tls'
import { type ListenerMaterial, listenerContextOptions } from './tls-material.js'

/** TlsListenerOptions configure the mutual-TLS listener: its material, and the bounds on its connections. */
export interface TlsListenerOptions extends ListenerMaterial {
  readonly maxConnections: number
  readonly handshakeTimeoutMs: number
  /** A connection that neither sends nor receives a byte for this long is closed. */
  readonly maxIdleMs: number
}

/**
 * createTlsListener makes a TLS 1.2+ server that requires and verifies a client certificate, so no MQTT byte
 * is read from a connection without a verified factory certificate. A socket whose handshake fails or does
 * not finish within `handshakeTimeoutMs` is destroyed; a verified one idle for `maxIdleMs` is closed; past
 * `maxConnections` new sockets are closed at once (Node's `drop`).
 */
export function createTlsListener(
  options: TlsListenerOptions,
  onConnection: (socket: TLSSocket) => void,
): Server {
  const server = createServer(
    {
      ...listenerContextOptions(options),
      requestCert: true,
      rejectUnauthorized: true,
      handshakeTimeout: options.handshakeTimeoutMs,
      // without it, small MQTT packets wait ~40 ms for Nagle's algorithm
      noDelay: true,
    },
    (socket) => {
      socket.setNoDelay(true)
      socket.setTimeout(options.maxIdleMs, () => socket.destroy())
      onConnection(socket)
    },
  )
  // with a listener Node only reports a failed or timed-out handshake; the socket must be ended here
  server.on('tlsClientError', (_err, socket) => socket.destroy())
  server.maxConnections = options.maxConnections
  return server
}
