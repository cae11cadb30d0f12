import { iot, iotidentity, mqtt } from 'aws-iot-device-sdk-v2'
import { DEV_PKI_FILES } from '../../src/pki/dev-pki.js'
import type { TestBridge } from './bridge.js'

/**
 * AwsDevice is the official AWS IoT Device SDK v2 (aws-iot-device-sdk-v2, its iotidentity client) connected to a
 * test bridge over mutual TLS, as the fleet-provisioning samples build it, with the MQTT 3.1.1 connection (Aedes
 * speaks 3.1.1; the samples' MQTT 5 client cannot fall back: docs/aws-fleet-provisioning.md).
 */
export interface AwsDevice {
  readonly connection: mqtt.MqttClientConnection
  readonly identity: iotidentity.IotIdentityClientv2
  /** close closes the identity client and disconnects (before the bridge stops: the CRT keeps Node alive). */
  close(): Promise<void>
}

/** connectAwsDevice connects with a certificate and key of the test PKI (default: the device's factory ones). */
export async function connectAwsDevice(
  bridge: TestBridge,
  id: string,
  options: { files?: { certFile: string; keyFile: string }; clean?: boolean; clientId?: string } = {},
): Promise<AwsDevice> {
  const files = options.files ?? bridge.pki.device(id)
  const builder = iot.AwsIotMqttConnectionConfigBuilder.new_mtls_builder_from_path(
    files.certFile,
    files.keyFile,
  )
  builder.with_certificate_authority_from_path(undefined, bridge.pki.file(DEV_PKI_FILES.issuingCaCert))
  builder.with_endpoint('127.0.0.1')
  builder.with_port(bridge.port)
  builder.with_client_id(options.clientId ?? `${id}-${Math.random().toString(36).slice(2, 8)}`)
  builder.with_clean_session(options.clean ?? false) // the samples' setting
  builder.with_keep_alive_seconds(30)
  builder.with_reconnect_min_sec(1).with_reconnect_max_sec(1)
  const connection = new mqtt.MqttClient().new_connection(builder.build())
  await connection.connect()
  const identity = iotidentity.IotIdentityClientv2.newFromMqtt311(connection, {
    maxRequestResponseSubscriptions: 2,
    maxStreamingSubscriptions: 0,
    operationTimeoutInSeconds: 5,
  })
  return {
    connection,
    identity,
    async close() {
      identity.close()
      await connection.disconnect()
    },
  }
}

/** modeledErrorOf is the `/rejected` body the SDK rejected a request with. */
export async function modeledErrorOf(request: Promise<unknown>): Promise<Record<string, unknown>> {
  try {
    await request
  } catch (err) {
    const modeled = (err as { modeledError?: Record<string, unknown> }).modeledError
    if (modeled) return modeled
    throw err
  }
  throw new Error('the request was accepted')
}
