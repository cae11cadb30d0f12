import { readFile } from 'node:fs/promises'
import { createServer, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/** MetricsExposition renders the metrics for a scrape, in Prometheus text format. */
export type MetricsExposition = () => Promise<{ contentType: string; body: string }>

function serveCrl(file: string, der: boolean, res: ServerResponse): void {
  readFile(file, 'utf8').then(
    (pem) => {
      if (!der) return res.writeHead(200, { 'content-type': 'application/x-pem-file' }).end(pem)
      const body = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64')
      res.writeHead(200, { 'content-type': 'application/pkix-crl' }).end(body)
    },
    () => res.writeHead(503, { 'content-type': 'text/plain' }).end('CRL not written yet\n'),
  )
}

/**
 * createHealthServer makes the server of Kubernetes probes and Prometheus: /livez (the process is responsive;
 * /healthz is an alias), /readyz (200 only while every readiness condition holds; otherwise 503 with the
 * reasons, one a line), when `metrics` is given, /metrics, and with a CRL file, /crl and /crl.pem (read at each
 * request: the CLI rewrites it on every revocation). The caller binds it.
 */
export function createHealthServer(
  readiness: () => boolean | readonly string[],
  metrics?: MetricsExposition,
  /** The CRL file (PEM) served at /crl.pem, and as DER at /crl (application/pkix-crl); absent: 404. */
  extras: { readonly crlFile?: string | undefined } = {},
): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0]
    if ((path === '/crl' || path === '/crl.pem') && extras.crlFile)
      return serveCrl(extras.crlFile, path === '/crl', res)
    if (path === '/metrics' && metrics)
      return void metrics().then(
        ({ contentType, body }) => res.writeHead(200, { 'content-type': contentType }).end(body),
        () => res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n'),
      )
    if (path !== '/readyz' && path !== '/livez' && path !== '/healthz')
      return void res.writeHead(404).end('not found\n')
    const state = path === '/readyz' ? readiness() : true
    const reasons = typeof state === 'boolean' ? [] : state
    const ok = typeof state === 'boolean' ? state : state.length === 0
    const body = ok ? 'ok\n' : ['not ready', ...reasons].map((line) => `${line}\n`).join('')
    res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(body)
  })
}

export const healthPort = (server: Server): number => (server.address() as AddressInfo).port
