import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEV_PKI_FILES } from '../../src/pki/dev-pki.js'
import type { Reply } from '../../src/protocol/messages.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { start } from '../support/process.js'
import { run } from '../support/tools.js'

let bridge: TestBridge

beforeAll(async () => {
  bridge = await startTestBridge()
})

afterAll(async () => {
  await bridge?.stop()
})

/** tlsArgs are the mosquitto client flags a tester types for a development device. */
function tlsArgs(id: string): string[] {
  const { certFile, keyFile } = bridge.pki.device(id)
  const ca = bridge.pki.file(DEV_PKI_FILES.issuingCaCert)
  return ['-h', 'localhost', '-p', String(bridge.port), '--cafile', ca, '--cert', certFile, '--key', keyFile]
}

/**
 * subscribeReply runs mosquitto_sub with its default client id and waits until its SUBACK arrived
 * (stdbuf: mosquitto_sub's stdout is block-buffered when it is not a terminal).
 */
async function subscribeReply(id: string, topic = `registration/${id}/reply`) {
  const args = [...tlsArgs(id), '-d', '-q', '1', '-t', topic, '-C', '1', '-W', '20']
  const sub = start('stdbuf', ['-oL', 'mosquitto_sub', ...args])
  await sub.waitFor(/received SUBACK/)
  return sub
}

function replyIn(output: string): Reply {
  const line = output.split('\n').find((l) => l.startsWith('{'))
  if (!line) throw new Error(`no reply in:\n${output}`)
  return JSON.parse(line) as Reply
}

describe('mosquitto_pub and mosquitto_sub, default client ids, side by side for one identity', () => {
  it('registers with {} and receives a key and certificate', async () => {
    const sub = await subscribeReply('device-001')
    const pub = await run('mosquitto_pub', [
      ...tlsArgs('device-001'),
      '-q',
      '1',
      '-t',
      'registration/request',
      '-m',
      '{}',
    ])
    expect(pub.code).toBe(0)
    expect(await sub.exited).toBe(0)
    const reply = replyIn(sub.output())
    expect(reply).toMatchObject({ status: 'issued' })
    expect(reply.status === 'issued' && reply.privateKey).toMatch(/BEGIN PRIVATE KEY/)
  })

  it('a rejected request is answered too', async () => {
    const sub = await subscribeReply('device-002')
    await run('mosquitto_pub', [
      ...tlsArgs('device-002'),
      '-q',
      '1',
      '-t',
      'registration/request',
      '-m',
      'not json',
    ])
    expect(await sub.exited).toBe(0)
    expect(replyIn(sub.output())).toMatchObject({ status: 'rejected', error: { code: 'MALFORMED_REQUEST' } })
  })

  it("mosquitto_sub cannot read another device's reply", async () => {
    const args = [
      ...tlsArgs('device-003'),
      '-q',
      '1',
      '-t',
      'registration/device-001/reply',
      '-C',
      '1',
      '-W',
      '10',
    ]
    const sub = start('stdbuf', ['-oL', 'mosquitto_sub', ...args])
    await sub.waitFor(/All subscription requests were denied/)
    sub.kill()
    await sub.exited
  })
})
