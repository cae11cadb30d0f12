import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ERROR_CODES } from '../../src/protocol/errors.js'
import { startTestBridge, type TestBridge } from '../support/bridge.js'
import { type Scrape, scrapeMetrics } from '../support/metrics.js'

/**
 * A counter whose label values are known starts at 0 on a fresh bridge: Prometheus sees no increase in a series
 * born at 1, so `increase(...[15m]) > 0` (RegistrationBridgeTlsReloadRefused) would miss the first refusal.
 */
const P = 'mqtt_registration_bridge_'
let bridge: TestBridge
let fresh: Scrape

beforeAll(async () => {
  bridge = await startTestBridge()
  fresh = await scrapeMetrics(bridge.bridge.healthPort as number)
})
afterAll(async () => {
  await bridge?.stop()
})

describe('a fresh bridge exports every known counter series at 0', () => {
  it('tls_reloads_total: every material (docs/operations.md) and result', () => {
    for (const material of ['listener', 'factory_ca', 'production_ca', 'issuing_ca', 'operational_ca'])
      for (const result of ['ok', 'refused'])
        expect(fresh.sample(`${P}tls_reloads_total`, { material, result }), `${material} ${result}`).toBe(0)
  })

  it('connections_refused_total: every reason', () => {
    for (const reason of [
      'identifier_rejected',
      'not_authorized',
      'unacceptable_protocol_version',
      'server_unavailable',
      'bad_username_or_password',
      'connect_error',
      'max_connections',
    ])
      expect(fresh.sample(`${P}connections_refused_total`, { reason }), reason).toBe(0)
  })

  it('registrations_total: every outcome, and a rejection with every error code, by mode and via', () => {
    for (const via of ['device', 'gateway'])
      for (const mode of ['', 'csr', 'server_key']) {
        const labels = { issuer: 'local-ca', via, mode }
        for (const outcome of ['issued', 'replayed', 'coalesced'])
          expect(fresh.sample(`${P}registrations_total`, { ...labels, outcome, code: '' })).toBe(0)
        for (const code of Object.keys(ERROR_CODES))
          expect(
            fresh.sample(`${P}registrations_total`, { ...labels, outcome: 'rejected', code }),
            `${code} ${mode} ${via}`,
          ).toBe(0)
      }
  })
})
