import type { Logger } from 'pino'
import { codecOf, type WireFormat } from '../protocol/codec/codecs.js'
import { isGatewayPayload } from '../protocol/gateway.js'
import type { DeviceIdentity, RequestConnection } from '../protocol/identity.js'
import type { Reply } from '../protocol/messages.js'
import { Payload } from '../protocol/payload.js'
import type { GatewayService } from './gateway-batch.js'
import type { RegistrationService } from './service.js'

/**
 * routeRequests sends a gateway batch (the extension) to the gateway service and any other request to the
 * registration service, whose answer it publishes through the broker: the broker never needs the service, nor
 * the service the broker. The payload is decoded once for both, by the codec of the format its topic names, and
 * the answer goes out in that format; `settled` waits for the deliveries under way.
 */
export function routeRequests(
  service: RegistrationService,
  gateways: GatewayService,
  broker: { publish(identity: string, reply: Reply, queue: boolean, format: WireFormat): Promise<void> },
  logger: Logger,
) {
  const pending = new Set<Promise<void>>()
  return {
    handle(
      identity: DeviceIdentity,
      bytes: Buffer,
      connection: RequestConnection,
      format: WireFormat = 'json',
    ): void {
      const { id, credential } = identity
      const payload = new Payload(bytes, codecOf(format))
      if (isGatewayPayload(payload)) {
        gateways.handle(id, payload, credential, connection)
        return
      }
      const delivery = service
        .handle(id, payload, credential)
        .then((a) => (a ? broker.publish(id, a.reply, a.queue, format) : undefined))
        .catch((err: unknown) => logger.warn({ identity: id, err }, 'reply could not be published'))
        .finally(() => pending.delete(delivery))
      pending.add(delivery)
    },
    settled: () => Promise.allSettled([...pending]),
  }
}
