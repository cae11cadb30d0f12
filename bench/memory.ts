import { connect, type TLSSocket } from 'node:tls'
import mqttPacket from 'mqtt-packet'
import type { Device } from './lib/load.js'
import type { BenchPki } from './lib/pki.js'
import { rssKb, settle } from './lib/rss.js'
import { startAedesEcho, startBridge, type Target } from './lib/servers.js'

/** MemoryRow is a server's resident memory with N idle mutual-TLS MQTT connections. */
export interface MemoryRow {
  readonly target: string
  readonly connections: number
  readonly rssKb: number
  readonly perConnectionKb: number
}

/** MemoryResult holds the rows and how close each server came back after everyone left. */
export interface MemoryResult {
  readonly rows: MemoryRow[]
  readonly after: {
    target: string
    baselineKb: number
    peakKb: number
    afterKb: number
    ratio: number
    /** RSS after each of several more connect-all/disconnect-all cycles: flat means reused, not leaked. */
    cyclesKb: number[]
  }[]
}

/** openIdle makes one idle device connection: TLS handshake, CONNECT (keepalive 60 s), CONNACK. */
function openIdle(target: Target, device: Device, clientId: string): Promise<TLSSocket> {
  const { hostname, port } = new URL(target.url)
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: hostname,
      port: Number(port),
      key: device.tls.keyPem,
      cert: device.tls.certPem,
      ca: device.tls.caPem,
    })
    socket.once('error', reject)
    socket.once('secureConnect', () => {
      socket.write(
        mqttPacket.generate({
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: 4,
          clientId,
          clean: true,
          keepalive: 60,
        }),
      )
    })
    // the CONNACK: only an accepted connection counts (a refused one would make memory per connection look small)
    socket.once('data', (connack: Buffer) => {
      if (connack[0] === 0x20 && connack[3] === 0) return resolve(socket)
      socket.destroy()
      reject(new Error(`connection ${clientId} refused (CONNACK ${connack.toString('hex')})`))
    })
  })
}

async function openMany(
  target: Target,
  devices: readonly Device[],
  sockets: TLSSocket[],
  upTo: number,
): Promise<void> {
  let next = sockets.length
  await Promise.all(
    Array.from({ length: 100 }, async () => {
      while (next < upTo) {
        const i = next++
        sockets.push(await openIdle(target, devices[i % devices.length] as Device, `idle-${i}`))
      }
    }),
  )
}

/** memoryBenchmark measures RSS per idle connection for the bridge and for plain Aedes on the same TLS listener. */
export async function memoryBenchmark(bench: BenchPki, options: { sizes: number[] }): Promise<MemoryResult> {
  const rows: MemoryRow[] = []
  const after: MemoryResult['after'] = []
  for (const makeTarget of [() => startBridge(bench.pki.stateDir), () => startAedesEcho(bench.pki.dir)]) {
    const target = await makeTarget()
    const pid = target.pids[0] ?? 0
    try {
      const warm: TLSSocket[] = []
      await openMany(target, bench.devices, warm, 100)
      for (const s of warm) s.destroy()
      await settle(1000)
      const baselineKb = rssKb(pid)
      const sockets: TLSSocket[] = []
      for (const size of options.sizes) {
        await openMany(target, bench.devices, sockets, size)
        await settle(500)
        const rss = rssKb(pid)
        const row = {
          target: target.name,
          connections: size,
          rssKb: rss,
          perConnectionKb: Math.round(((rss - baselineKb) / size) * 10) / 10,
        }
        rows.push(row)
        process.stderr.write(
          `memory ${row.target} ${size} connections: ${Math.round(rss / 1024)} MiB, ${row.perConnectionKb} KiB each\n`,
        )
      }
      const peakKb = rssKb(pid)
      const largest = sockets.length
      for (const s of sockets.splice(0)) s.destroy()
      await settle(3000)
      const afterKb = rssKb(pid)
      // more cycles of connecting and disconnecting everyone: if memory is reused rather than leaked, RSS plateaus
      const cyclesKb: number[] = []
      for (let cycle = 0; cycle < 3; cycle++) {
        await openMany(target, bench.devices, sockets, Math.min(largest, 2000))
        for (const s of sockets.splice(0)) s.destroy()
        await settle(1000)
        cyclesKb.push(rssKb(pid))
      }
      const ratio = Math.round((afterKb / baselineKb) * 100) / 100
      after.push({ target: target.name, baselineKb, peakKb, afterKb, ratio, cyclesKb })
      const mib = (kb: number) => Math.round(kb / 1024)
      process.stderr.write(
        `memory ${target.name} after disconnect: ${mib(afterKb)} MiB (start ${mib(baselineKb)}, peak ${mib(peakKb)}; after more cycles ${cyclesKb.map(mib).join(', ')})\n`,
      )
    } finally {
      await target.stop()
    }
  }
  return { rows, after }
}
