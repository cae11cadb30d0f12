import { isDeepStrictEqual } from 'node:util'
import type { KubernetesObject } from '@kubernetes/client-node'
import { RegistrationError } from '../../protocol/errors.js'
import type { FlowContext } from './flow-context.js'
import type { CustomPlural } from './kube-api.js'
import type { ResourceWatcher } from './watcher.js'

type Spec = Record<string, unknown>

/**
 * ensureObject creates a Certificate or CertificateRequest; if one of that name exists (409) it is reused only
 * when its spec is what this registration needs, otherwise it is deleted (with `also`, e.g. its key Secret)
 * and created again. Returns true when it created the object.
 */
export async function ensureObject(
  ctx: FlowContext,
  plural: CustomPlural,
  watcher: ResourceWatcher<KubernetesObject & { spec?: Spec }>,
  body: { metadata: { name: string }; spec: Spec },
  signal: AbortSignal,
  also?: (signal: AbortSignal) => Promise<void>,
): Promise<boolean> {
  const name = body.metadata.name
  if ((await ctx.api.create(plural, body, signal)) === 'created') return true
  const existing = await watcher.waitFor(name, (o) => o, signal)
  // every field the bridge sets is there with the same value (the server may add defaults)
  const spec = existing.spec
  if (spec && Object.entries(body.spec).every(([key, value]) => isDeepStrictEqual(spec[key], value)))
    return false
  await ctx.api.delete(plural, name, signal)
  await also?.(signal)
  await watcher.waitFor(
    name,
    (o) => (o && o.metadata?.uid === existing.metadata?.uid ? undefined : true),
    signal,
  )
  if ((await ctx.api.create(plural, body, signal)) === 'exists')
    throw new RegistrationError('ISSUER_UNAVAILABLE', `another ${plural} object of this name appeared; retry`)
  return true
}
