import { isGatewayPayload } from '../protocol/gateway.js'
import type { DeviceIdentity, RequestConnection } from '../protocol/identity.js'
import { Payload } from '../protocol/payload.js'
import type { Deliveries } from './deliveries.js'
import type { GatewayService } from './gateway-batch.js'
import type { RegistrationService } from './service.js'

/** RequestHandler takes what a device published on the bootstrap topic. */
export type RequestHandler = (identity: DeviceIdentity, bytes: Buffer, connection: RequestConnection) => void

/**
 * routeRequests sends a gateway batch (the extension) to the gateway service and any other request to the
 * registration service, whose answer `deliveries` publishes; the payload is parsed once for both.
 */
export function routeRequests(
  service: RegistrationService,
  gateways: GatewayService,
  deliveries: Deliveries,
): RequestHandler {
  return (identity, bytes, connection) => {
    const payload = new Payload(bytes)
    if (isGatewayPayload(payload)) gateways.handle(identity.id, payload, identity.credential, connection)
    else deliveries.track(identity.id, service.handle(identity.id, payload, identity.credential, connection))
  }
}
