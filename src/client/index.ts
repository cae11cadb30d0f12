/** The device-side library: what `registration-bridge register` uses, for Node-based devices and gateways. */

export { MalformedReplyError, RegistrationRejectedError } from './answer.js'
export { CREDENTIAL_FILES, verifyCredentials, writeCredentials } from './credentials.js'
export {
  type BundledRegistration,
  type BundleOptions,
  type BundleTls,
  commonNameOf,
  connectTls,
  type DeviceTls,
  type DownstreamCredentials,
  type RegisterOptions,
  type Registration,
  register,
  renew,
} from './register.js'
export {
  type DeviceOutcome,
  type DownstreamDevice,
  type RegisterDevicesOptions,
  registerDevices,
} from './register-devices.js'
