import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

/**
 * startHealthServer serves Kubernetes probes: /livez (the process is serving) and /readyz (the listener is up
 * and the issuer can issue); /healthz is an alias of /livez.
 */
export async function startHealthServer(host: string, port: number, isReady: () => boolean): Promise<Server> {
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
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve())
  })
  return server
}

/** healthPort is the port the health server bound. */
export const healthPort = (server: Server): number => (server.address() as AddressInfo).port
