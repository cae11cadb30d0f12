import {
  Certificate,
  CertificateRequest,
  ClusterIssuer,
  Issuer,
} from '@kubernetes-models/cert-manager/cert-manager.io/v1'
import type { ResourceType } from './resources.js'
import { errors } from './status.js'

const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  Certificate: Certificate as never,
  CertificateRequest: CertificateRequest as never,
  Issuer: Issuer as never,
  ClusterIssuer: ClusterIssuer as never,
}

/**
 * validateObject checks an object against cert-manager's published schema (as the API server does with a
 * CRD's structural schema) and answers 422 Invalid, as the real API server would.
 */
export function validateObject(
  r: ResourceType,
  object: { metadata: { name?: string }; [key: string]: unknown },
): void {
  const Model = MODELS[r.kind]
  const name = object.metadata.name ?? ''
  if (Model) {
    try {
      new Model({ ...object, apiVersion: 'cert-manager.io/v1', kind: r.kind } as never).validate()
    } catch (err) {
      throw errors.invalid(r, name, [
        { field: 'spec', message: (err as Error).message.split('\n')[0] ?? 'invalid' },
      ])
    }
  }
  if (r.kind === 'Secret') {
    for (const [key, value] of Object.entries((object.data as Record<string, unknown>) ?? {})) {
      if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) {
        throw errors.invalid(r, name, [{ field: `data[${key}]`, message: 'Invalid value: must be base64' }])
      }
    }
  }
}
