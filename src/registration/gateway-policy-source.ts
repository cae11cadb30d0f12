import type { Logger } from 'pino'
import { ReloadableFile } from '../config/reloadable-file.js'
import { EMPTY_POLICY, type GatewayPolicy, loadGatewayPolicy } from './gateway-policy.js'

/**
 * GatewayPolicySource holds the current gateway policy and replaces it atomically when the file or an allow-list
 * it names changes (file watch) or on SIGHUP. A file that does not load is refused and the policy in force stays.
 */
export class GatewayPolicySource extends ReloadableFile<GatewayPolicy> {
  /** GatewayPolicySource loads the file now and throws if it is bad: a bad policy at start-up stops the bridge. */
  constructor(file: string | undefined, logger: Logger) {
    super(file, logger, {
      what: 'gateway policy',
      load: loadGatewayPolicy,
      empty: EMPTY_POLICY,
      describe: (policy) => ({ rules: policy.rules.length }),
    })
  }
}
