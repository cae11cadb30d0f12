import { issuanceBenchmark } from './issuance.js'
import { createBenchPki } from './lib/pki.js'
import { registrationBenchmark } from './registration.js'

const smoke = process.argv.includes('--smoke')
const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7)
const results: Record<string, unknown> = {}
if (!only || only === 'issuance')
  results.issuance = await issuanceBenchmark({ durationMs: smoke ? 200 : 3000 })
if (!only || only === 'registration') {
  const bench = await createBenchPki(64)
  results.registration = await registrationBenchmark(bench, {
    concurrencies: smoke ? [1, 4] : [1, 16, 64],
    durationMs: smoke ? 300 : 5000,
  })
}
console.log(JSON.stringify(results, null, 1))
