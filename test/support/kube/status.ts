import type { ResourceType } from './resources.js'
import { qualifiedName } from './resources.js'

/** ApiError is an error the emulated API server answers with a Status body, as the real one does. */
export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: object,
    readonly retryAfterSeconds?: number,
  ) {
    super(message)
  }

  /** status is the metav1.Status body. */
  status(): object {
    return {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: this.message,
      reason: this.reason,
      ...(this.details ? { details: this.details } : {}),
      code: this.code,
    }
  }
}

const details = (r: ResourceType, name: string) => ({
  name,
  ...(r.group ? { group: r.group } : {}),
  kind: r.plural,
})

/** The real API server's errors, with its reasons and message formats. */
export const errors = {
  notFound: (r: ResourceType, name: string) =>
    new ApiError(404, 'NotFound', `${qualifiedName(r)} "${name}" not found`, details(r, name)),
  alreadyExists: (r: ResourceType, name: string) =>
    new ApiError(409, 'AlreadyExists', `${qualifiedName(r)} "${name}" already exists`, details(r, name)),
  conflict: (r: ResourceType, name: string) =>
    new ApiError(
      409,
      'Conflict',
      `Operation cannot be fulfilled on ${qualifiedName(r)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
      details(r, name),
    ),
  invalid: (r: ResourceType, name: string, causes: { field: string; message: string }[]) =>
    new ApiError(
      422,
      'Invalid',
      `${r.kind}${r.group ? `.${r.group}` : ''} "${name}" is invalid: ${causes.map((c) => `${c.field}: ${c.message}`).join(', ')}`,
      { ...details(r, name), causes: causes.map((c) => ({ reason: 'FieldValueInvalid', ...c })) },
    ),
  expired: (requested: string, oldest: number) =>
    new ApiError(410, 'Expired', `too old resource version: ${requested} (${oldest})`),
  tooManyRequests: (retryAfterSeconds: number) =>
    new ApiError(
      429,
      'TooManyRequests',
      'Too many requests, please try again later.',
      { retryAfterSeconds },
      retryAfterSeconds,
    ),
  internal: (
    message = 'an error on the server ("injected fault") has prevented the request from succeeding',
  ) => new ApiError(500, 'InternalError', message),
  badRequest: (message: string) => new ApiError(400, 'BadRequest', message),
  unprocessable: (message: string) => new ApiError(422, 'Invalid', message),
  unsupportedMediaType: (type: string) =>
    new ApiError(
      415,
      'UnsupportedMediaType',
      `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json; got ${type}`,
    ),
  methodNotAllowed: () =>
    new ApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource'),
}
