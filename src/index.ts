/** The bridge as a library: start it from code, and its protocol types. */
export { type Bridge, startBridge } from './app/start.js'
export { type Config, ConfigError, loadConfig } from './config/load.js'
export { ERROR_CODES, type ErrorCode, RegistrationError } from './protocol/errors.js'
export type { IssuedReply, KeyAlgorithm, PendingReply, RejectedReply, Reply } from './protocol/messages.js'
