#!/usr/bin/env node
// An example registration hook for mqtt-registration-bridge (docs/hook.md): a tiny HTTPS server, Node only.
//
// It allows the identities of an inventory (a JSON file), narrowing their certificates and assigning each a
// production endpoint as the inventory says, and denies every other identity with a reason:
//
//   { "devices": { "sensor-1": { "endpoint": "mqtts://eu-1.example.com:8883", "validityHours": 24 },
//                  "meter-7": { "dnsNames": [] },
//                  "*": {} } }
//
// An entry may hold `endpoint`, `validityHours`, `dnsNames`, `uris` (a subset of what the bridge offers: the
// bridge refuses an answer that widens the certificate). `*` matches any identity not listed; without it, an
// identity not listed is denied. A gateway's device is looked up as `<gateway>/<device>`, then `<gateway>/*`.
//
// Run: HOOK_CERT_FILE=server.crt HOOK_KEY_FILE=server.key HOOK_INVENTORY_FILE=inventory.json \
//      [HOOK_CLIENT_CA_FILE=bridge-ca.crt] [HOOK_TOKEN_FILE=token] [HOOK_PORT=8443] [HOOK_HOST=127.0.0.1] \
//      node examples/registration-hook.mjs
// With HOOK_CLIENT_CA_FILE the bridge must present a client certificate that CA signed (mutual TLS); with
// HOOK_TOKEN_FILE it must send `Authorization: Bearer <token>`. Each call is logged as one JSON line.
import { timingSafeEqual } from 'node:crypto'
import { readFileSync } from 'node:fs'
import https from 'node:https'
import { pathToFileURL } from 'node:url'

const MAX_BODY_BYTES = 64 * 1024

/** inventoryDecision answers a call from an inventory ({ devices: { identity: entry } }). */
export function inventoryDecision(inventory) {
  const devices = inventory.devices ?? {}
  return (call) => {
    const keys = call.gateway
      ? [`${call.gateway}/${call.identity}`, `${call.gateway}/*`]
      : [call.identity, '*']
    const key = keys.find((k) => Object.hasOwn(devices, k))
    if (key === undefined)
      return { body: { allow: false, reason: `${call.identity} is not in the inventory` } }
    const { endpoint, validityHours, dnsNames, uris } = devices[key]
    const certificate = {
      ...(validityHours === undefined
        ? {}
        : { validityHours: Math.min(validityHours, call.certificate.validityHours) }),
      ...(dnsNames === undefined
        ? {}
        : { dnsNames: dnsNames.filter((n) => call.certificate.dnsNames.includes(n)) }),
      ...(uris === undefined ? {} : { uris: uris.filter((u) => call.certificate.uris.includes(u)) }),
    }
    return {
      body: {
        allow: true,
        ...(Object.keys(certificate).length === 0 ? {} : { certificate }),
        ...(endpoint === undefined ? {} : { endpoint: { url: endpoint } }),
      },
    }
  }
}

const sameToken = (header, token) => {
  const expected = Buffer.from(`Bearer ${token}`)
  const got = Buffer.from(header ?? '')
  return got.length === expected.length && timingSafeEqual(got, expected)
}

/**
 * startHook starts the hook. `decide(call)` returns (or resolves to) `{ status = 200, body }`: an object body is
 * sent as JSON, a string as it is. `token` (a string, or a function for a rotating one) requires a bearer token;
 * `clientCa` requires a client certificate it signed. `calls` keeps every call's body.
 */
export async function startHook(options) {
  const { key, cert, clientCa, token, host = '127.0.0.1', port = 0, log = () => {} } = options
  const decide = options.decide ?? inventoryDecision(options.inventory ?? {})
  const calls = []
  const server = https.createServer(
    { key, cert, ...(clientCa ? { ca: clientCa, requestCert: true, rejectUnauthorized: true } : {}) },
    (req, res) => {
      // with mutual TLS, who called (the bridge's client certificate), for the log
      const client = clientCa ? req.socket.getPeerCertificate().subject?.CN : undefined
      const send = (status, body) => {
        const text = typeof body === 'string' ? body : JSON.stringify(body)
        res.writeHead(status, { 'content-type': 'application/json' }).end(text)
      }
      const wanted = typeof token === 'function' ? token() : token
      if (wanted !== undefined && !sameToken(req.headers.authorization, wanted)) {
        log({ status: 401, msg: 'missing or wrong bearer token' })
        return send(401, { error: 'unauthorized' })
      }
      if (req.method !== 'POST') return send(405, { error: 'POST only' })
      const chunks = []
      let size = 0
      req.on('data', (chunk) => {
        size += chunk.length
        if (size > MAX_BODY_BYTES) req.destroy()
        else chunks.push(chunk)
      })
      req.on('end', async () => {
        let call
        try {
          call = JSON.parse(Buffer.concat(chunks).toString('utf8'))
        } catch {
          return send(400, { error: 'not JSON' })
        }
        calls.push(call)
        try {
          const { status = 200, body } = await decide(call)
          log({
            client,
            identity: call.identity,
            gateway: call.gateway,
            kind: call.kind,
            status,
            answer: body,
          })
          if (!res.destroyed) send(status, body)
        } catch (err) {
          log({ identity: call.identity, err: String(err) })
          send(500, { error: 'internal error' })
        }
      })
    },
  )
  let connections = 0
  server.on('secureConnection', () => connections++)
  server.keepAliveTimeout = 60_000
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, resolve)
  })
  const bound = server.address().port
  return {
    url: `https://${host === '127.0.0.1' ? 'localhost' : host}:${bound}/registrations`,
    port: bound,
    calls,
    /** TLS connections accepted so far (a client that keeps them alive opens few). */
    get connections() {
      return connections
    },
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const env = process.env
  const read = (name) => (env[name] ? readFileSync(env[name], 'utf8') : undefined)
  const tokenFile = env.HOOK_TOKEN_FILE
  const hook = await startHook({
    key: read('HOOK_KEY_FILE'),
    cert: read('HOOK_CERT_FILE'),
    clientCa: read('HOOK_CLIENT_CA_FILE'),
    // re-read on every call: a rotated token applies at once
    token: tokenFile ? () => readFileSync(tokenFile, 'utf8').trim() : undefined,
    inventory: JSON.parse(read('HOOK_INVENTORY_FILE') ?? '{}'),
    host: env.HOOK_HOST ?? '127.0.0.1',
    port: Number(env.HOOK_PORT ?? 8443),
    log: (fields) => console.log(JSON.stringify({ time: new Date().toISOString(), ...fields })),
  })
  console.log(JSON.stringify({ msg: 'registration hook listening', url: hook.url }))
  const stop = () => hook.close().then(() => process.exit(0))
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}
