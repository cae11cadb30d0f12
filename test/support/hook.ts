import { readFile } from 'node:fs/promises'
import { type HookResponse, type RunningHook, startHook } from '../../examples/registration-hook.mjs'
import { DEV_PKI_FILES } from '../../src/pki/dev-pki.js'
import type { TestPki } from './pki.js'

export type { HookCallBody, HookResponse, RunningHook } from '../../examples/registration-hook.mjs'

/**
 * startTestHook starts the example hook (examples/registration-hook.mjs) on a loopback port with real TLS: the
 * test PKI's server certificate for localhost (signed by its issuing CA, which `hookSettings` makes the bridge
 * trust). Options are the example's: an inventory, or a `decide` of the test's own.
 */
export async function startTestHook(
  pki: TestPki,
  options: Omit<Parameters<typeof startHook>[0], 'key' | 'cert'> = {},
): Promise<RunningHook> {
  return startHook({
    key: await readFile(pki.file(DEV_PKI_FILES.serverKey), 'utf8'),
    cert: await readFile(pki.file(DEV_PKI_FILES.serverCert), 'utf8'),
    ...options,
  })
}

/** hookSettings are the bridge's settings for a test hook (the product's defaults otherwise). */
export const hookSettings = (hook: { url: string }, pki: TestPki, extra: string[] = []): string[] => [
  `hook.url=${hook.url}`,
  `hook.caFile=${pki.file(DEV_PKI_FILES.issuingCaCert)}`,
  ...extra,
]

/** Held is a hook answer the test gives when it chooses: `decide` returns `promise`, the test calls `answer`. */
export interface Held {
  readonly promise: Promise<HookResponse>
  answer(response: HookResponse): void
}

export function held(): Held {
  let answer: (r: HookResponse) => void = () => {}
  const promise = new Promise<HookResponse>((resolve) => {
    answer = resolve
  })
  return { promise, answer }
}
