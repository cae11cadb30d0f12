import { EventEmitter } from 'node:events'
import { readFile } from 'node:fs/promises'
import { Writable } from 'node:stream'
import { type Bridge, startBridge } from '../../src/app/start.js'
import { loadConfig } from '../../src/config/load.js'
import { createLogger } from '../../src/logger.js'
import { createTestPki, type TestPki } from './pki.js'

/** TestBridge is a bridge on a free loopback port with its own PKI, and everything it logged. */
export interface TestBridge {
  readonly bridge: Bridge
  readonly pki: TestPki
  readonly url: string
  readonly port: number
  readonly logs: string[]
  /** waitForLog resolves when a log line with this message is written after the call. */
  waitForLog(msg: string): Promise<void>
  auditLines(): Promise<string[]>
  stop(): Promise<void>
}

/** startTestBridge starts a real bridge; `sets` override settings as `--set` would. */
export async function startTestBridge(sets: readonly string[] = [], pki?: TestPki): Promise<TestBridge> {
  const testPki = pki ?? (await createTestPki())
  const config = loadConfig({
    sets: [
      'listen.host=127.0.0.1',
      'listen.port=0',
      'health.host=127.0.0.1',
      'health.port=0',
      `stateDir=${testPki.stateDir}`,
      'log.level=debug',
      // tests stop bridges often: stop answers what is in flight ISSUER_UNAVAILABLE at once unless a test says otherwise
      'shutdown.gracePeriodMs=0',
      ...sets,
    ],
  })
  const logs: string[] = []
  const logged = new EventEmitter()
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).trim().split('\n')) {
        logs.push(line)
        logged.emit('line', JSON.parse(line))
      }
      done()
    },
  })
  const bridge = await startBridge(config, createLogger(config.log.level, sink))
  const port = bridge.address.port
  return {
    bridge,
    pki: testPki,
    url: `mqtts://localhost:${port}`,
    port,
    logs,
    waitForLog: (msg) =>
      new Promise((resolve) => {
        const listener = (entry: { msg?: string }): void => {
          if (entry.msg !== msg) return
          logged.off('line', listener)
          resolve()
        }
        logged.on('line', listener)
      }),
    async auditLines() {
      const text = await readFile(config.auditLog, 'utf8').catch(() => '')
      return text.split('\n').filter(Boolean)
    },
    stop: () => bridge.stop(),
  }
}
