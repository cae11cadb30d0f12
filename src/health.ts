import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

/**
 * createHealthServer makes the server of Kubernetes probes: /livez (the process is serving) and /readyz (the
 * listener is up and the issuer can issue); /healthz is an alias of /livez. The caller binds it.
 */
export function createHealthServer(isReady: () => boolean): Server {
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0]
    let ok: boolean
    if (path === '/livez' || path === '/healthz') ok = true
    else if (path === '/readyz') ok = isReady()
    else {
      res.writeHead(404).end('not found\n')
      return
    }
    res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok\n' : 'not ready\n')
  })
  return server
}

/** healthPort is the port the health server bound. */
export const healthPort = (server: Server): number => (server.address() as AddressInfo).port
