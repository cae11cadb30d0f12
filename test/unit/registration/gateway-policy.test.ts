import { EventEmitter } from 'node:events'
import { mkdir, mkdtemp, rename, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { createLogger } from '../../../src/logger.js'
import {
  GatewayPolicySource,
  loadGatewayPolicy,
  matchesPattern,
  mayRegister,
  ruleFor,
} from '../../../src/registration/gateway-policy.js'
import { writePolicy } from '../../support/gateway.js'

const key = { serverKey: false, algorithm: 'ECDSA-P256' } as const

describe('gateway policy', () => {
  it('matches gateways in file order and devices by pattern ({gateway}) or allow-list', async () => {
    const file = await writePolicy(
      'gateways:\n  - match: hub-7\n    transfer: true\n  - match: hub-*\n    devices:\n      patterns: ["s-{gateway}-*"]\n      allowListFile: allow.txt\n',
      'meter-1\nmeter-2 # comment\n',
    )
    const policy = loadGatewayPolicy(file)
    expect(ruleFor(policy, 'hub-7')?.transfer).toBe(true)
    expect(ruleFor(policy, 'hub-7')?.adopt).toBe(false)
    const rule = ruleFor(policy, 'hub-3')
    if (!rule) throw new Error('no rule')
    expect(ruleFor(policy, 'device-1')).toBeUndefined()
    expect(mayRegister(policy, rule, 'hub-3', 's-hub-3-01', key)).toBeUndefined()
    expect(mayRegister(policy, rule, 'hub-3', 'meter-2', key)).toBeUndefined()
    expect(mayRegister(policy, rule, 'hub-3', 's-hub-4-01', key)).toBe('DEVICE_NOT_ALLOWED')
    expect(
      mayRegister(policy, rule, 'hub-3', 's-hub-3-01', { serverKey: true, algorithm: 'ECDSA-P256' }),
    ).toBeUndefined()
  })

  it('never lets a gateway register an identity the policy makes a gateway, whatever its patterns say', async () => {
    // the broad rule of the report: every identity is a device of wild-*, gateway-002 included
    const file = await writePolicy(
      'gateways:\n  - match: wild-*\n    devices: { patterns: ["*"] }\n  - match: gateway-002\n  - match: hub-*\n    devices: { patterns: ["{gateway}-s-*"] }\n',
      'hub-3\n',
    )
    const policy = loadGatewayPolicy(file)
    const wild = ruleFor(policy, 'wild-a')
    const hub = ruleFor(policy, 'hub-3')
    if (!wild || !hub) throw new Error('no rule')
    expect(mayRegister(policy, wild, 'wild-a', 'sensor-1', key)).toBeUndefined()
    for (const other of ['gateway-002', 'wild-b', 'wild-a', 'hub-9']) {
      expect(mayRegister(policy, wild, 'wild-a', other, key)).toBe('DEVICE_IS_A_GATEWAY')
    }
    // a suffix pattern under a prefix match makes the sensors gateways too: refused, not silently allowed
    expect(mayRegister(policy, hub, 'hub-3', 'hub-3-s-01', key)).toBe('DEVICE_IS_A_GATEWAY')
    expect(mayRegister(policy, hub, 'hub-3', 'hub-3', key)).toBe('DEVICE_IS_A_GATEWAY')
  })

  it('applies server-key and key-algorithm rules', async () => {
    const file = await writePolicy(
      'gateways:\n  - match: hub\n    devices: { patterns: ["s-*"] }\n    serverKeys: false\n    keyAlgorithms: [Ed25519]\n',
    )
    const policy = loadGatewayPolicy(file)
    const rule = ruleFor(policy, 'hub')
    if (!rule) throw new Error('no rule')
    expect(mayRegister(policy, rule, 'hub', 's-1', { serverKey: true, algorithm: 'Ed25519' })).toBe(
      'SERVER_KEY_NOT_ALLOWED',
    )
    expect(mayRegister(policy, rule, 'hub', 's-1', key)).toBe('KEY_ALGORITHM_NOT_ALLOWED')
    expect(
      mayRegister(policy, rule, 'hub', 's-1', { serverKey: false, algorithm: 'Ed25519' }),
    ).toBeUndefined()
  })

  it('treats * as identity characters only, and dots literally', () => {
    expect(matchesPattern('a.b', 'a.b')).toBe(true)
    expect(matchesPattern('axb', 'a.b')).toBe(false)
    expect(matchesPattern('gw-s-1', 'gw-*')).toBe(true)
    expect(matchesPattern('other-gw-s-1', 'gw-*')).toBe(false)
  })

  it.each([
    ['an unknown key', 'gateways:\n  - match: hub\n    colour: red\n', /colour/],
    ['a bad match', 'gateways:\n  - match: "a b"\n', /gateways\.0\.match/],
    [
      'a missing allow-list',
      'gateways:\n  - match: hub\n    devices: { allowListFile: nope.txt }\n',
      /nope\.txt/,
    ],
    ['bad YAML', 'gateways: [\n', /gateway policy/],
  ])('refuses a file with %s', async (_name, yaml, message) => {
    const file = await writePolicy(yaml)
    expect(() => loadGatewayPolicy(file)).toThrow(message)
  })

  it('reloads when the file is replaced, atomically; a bad file keeps the old policy', async () => {
    const file = await writePolicy('gateways:\n  - match: hub-1\n')
    const lines: { msg: string }[] = []
    const logged = new EventEmitter()
    const sink = new Writable({
      write(chunk, _enc, done) {
        const entry = JSON.parse(String(chunk)) as { msg: string }
        lines.push(entry)
        logged.emit(entry.msg)
        done()
      },
    })
    const source = new GatewayPolicySource(file, createLogger('info', sink))
    source.watch({ onChange: true })
    try {
      const refused = new Promise((resolve) =>
        logged.once('gateway policy refused; keeping the old one', resolve),
      )
      await writeFile(join(file, '..', 'tmp.yaml'), 'gateways: 7\n')
      await rename(join(file, '..', 'tmp.yaml'), file)
      await refused
      expect(ruleFor(source.current, 'hub-1')).toBeDefined()
      const reloaded = new Promise((resolve) => logged.once('gateway policy reloaded', resolve))
      await writeFile(file, 'gateways:\n  - match: hub-2\n')
      await reloaded
      expect(ruleFor(source.current, 'hub-1')).toBeUndefined()
      expect(ruleFor(source.current, 'hub-2')).toBeDefined()
    } finally {
      source.close()
    }
  })

  it('reloads when a Kubernetes ConfigMap volume swaps its ..data symlink', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mrb-configmap-'))
    for (const [version, gateway] of [
      ['..v1', 'hub-1'],
      ['..v2', 'hub-2'],
    ] as const) {
      await mkdir(join(dir, version))
      await writeFile(join(dir, version, 'gateways.yaml'), `gateways:\n  - match: ${gateway}\n`)
    }
    await symlink('..v1', join(dir, '..data'))
    await symlink('..data/gateways.yaml', join(dir, 'gateways.yaml'))
    const logged = new EventEmitter()
    const sink = new Writable({
      write(chunk, _enc, done) {
        logged.emit((JSON.parse(String(chunk)) as { msg: string }).msg)
        done()
      },
    })
    const source = new GatewayPolicySource(join(dir, 'gateways.yaml'), createLogger('info', sink))
    source.watch({ onChange: true })
    try {
      expect(ruleFor(source.current, 'hub-1')).toBeDefined()
      const reloaded = new Promise((resolve) => logged.once('gateway policy reloaded', resolve))
      await symlink('..v2', join(dir, '..data_tmp'))
      await rename(join(dir, '..data_tmp'), join(dir, '..data'))
      await reloaded
      expect(ruleFor(source.current, 'hub-2')).toBeDefined()
    } finally {
      source.close()
    }
  })
})
