import { decode } from 'cborg'
import { describe, expect, it } from 'vitest'
import {
  AWS_ERRORS,
  csrRequestOf,
  decodeAwsBody,
  encodeAws,
  registerThingRequestOf,
  rejectedBody,
  toAwsError,
} from '../../../src/protocol/aws/messages.js'
import { isAwsReplyTopic, parseAwsRequestTopic } from '../../../src/protocol/aws/topics.js'
import { ERROR_CODES, RegistrationError } from '../../../src/protocol/errors.js'

describe('AWS fleet-provisioning topics', () => {
  it('reads the request topics of the set, and nothing else', () => {
    expect(parseAwsRequestTopic('$aws/certificates/create/json')).toMatchObject({
      operation: 'CreateKeysAndCertificate',
      format: 'json',
    })
    expect(parseAwsRequestTopic('$aws/certificates/create-from-csr/cbor')).toMatchObject({
      operation: 'CreateCertificateFromCsr',
      format: 'cbor',
    })
    expect(parseAwsRequestTopic('$aws/provisioning-templates/T-1/provision/json')).toMatchObject({
      operation: 'RegisterThing',
      templateName: 'T-1',
    })
    for (const other of [
      '$aws/certificates/create/xml',
      '$aws/certificates/create/json/accepted',
      '$aws/things/x/shadow/update',
      '$aws/provisioning-templates/+/provision/json',
      '$aws/provisioning-templates/#/provision/json',
      '$aws/provisioning-templates//provision/json',
      '$aws/provisioning-templates/a/b/provision/json',
    ])
      expect(parseAwsRequestTopic(other)).toBeUndefined()
  })

  it('reply topics: exactly a request topic with /accepted or /rejected', () => {
    expect(isAwsReplyTopic('$aws/certificates/create/json/accepted')).toBe(true)
    expect(isAwsReplyTopic('$aws/provisioning-templates/T/provision/cbor/rejected')).toBe(true)
    expect(isAwsReplyTopic('$aws/certificates/create/json')).toBe(false)
    expect(isAwsReplyTopic('$aws/certificates/create/+/accepted')).toBe(false)
    expect(isAwsReplyTopic('$aws/certificates/create/json/#')).toBe(false)
  })
})

describe('AWS fleet-provisioning payloads', () => {
  it('every v1 error code has an AWS shape; an unexpected error is 500 InternalFailure', () => {
    expect(Object.keys(AWS_ERRORS).sort()).toEqual(Object.keys(ERROR_CODES).sort())
    expect(
      rejectedBody(toAwsError(new RegistrationError('RATE_LIMITED', 'slow', { retryAfterSeconds: 7 }))),
    ).toEqual({
      statusCode: 429,
      errorCode: 'Throttling',
      errorMessage: 'slow; retry after 7 s (RATE_LIMITED)',
    })
    expect(toAwsError(new Error('boom'))).toMatchObject({ statusCode: 500, errorCode: 'InternalFailure' })
  })

  it('an empty body is {}; a body too large or unreadable is refused', () => {
    expect(decodeAwsBody(Buffer.alloc(0), 'cbor', 100)).toEqual({})
    expect(decodeAwsBody(Buffer.from('{"templateName":"x"}'), 'json', 100)).toEqual({ templateName: 'x' })
    expect(() => decodeAwsBody(Buffer.alloc(101), 'json', 100)).toThrow(/limit/)
    expect(() => decodeAwsBody(Buffer.from('{'), 'json', 100)).toThrow(RegistrationError)
  })

  it('requests: a CSR string; a token and string parameters; unknown fields ignored', () => {
    expect(csrRequestOf({ certificateSigningRequest: 'PEM', templateName: 'x' })).toEqual({ csr: 'PEM' })
    expect(() => csrRequestOf({ certificateSigningRequest: new Uint8Array([1]) })).toThrow(/string/)
    expect(registerThingRequestOf({ certificateOwnershipToken: 't', templateName: 'x' })).toEqual({
      certificateOwnershipToken: 't',
      parameters: {},
    })
    expect(() => registerThingRequestOf({})).toThrow('Certificate ownership token cannot be empty.')
    expect(() => registerThingRequestOf({ certificateOwnershipToken: 't', parameters: { a: 1 } })).toThrow(
      /parameters.a/,
    )
  })

  it('CBOR answers are maps of text strings with integer status codes', () => {
    const bytes = encodeAws({ statusCode: 400, errorCode: 'E', errorMessage: 'm' }, 'cbor')
    expect(bytes[0]).toBe(0xa3) // a definite map of 3
    expect(decode(bytes)).toEqual({ statusCode: 400, errorCode: 'E', errorMessage: 'm' })
    expect(JSON.parse(encodeAws({ thingName: 't', deviceConfiguration: {} }, 'json').toString())).toEqual({
      thingName: 't',
      deviceConfiguration: {},
    })
  })
})
