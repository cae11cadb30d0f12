/**
 * DirectReply is the one connection an AWS fleet-provisioning request came on, as its answer needs it: AWS answers
 * "through the same MQTT connection used to publish the API request", to a device subscribed to the reply topic
 * (every claim device subscribes to the same `/accepted` topic, so a broker-wide publish would hand one device's
 * key to all). Nothing is routed through the broker, queued for a later session, or sent across Redis.
 */
export interface DirectReply {
  /** true while the connection is up. */
  readonly open: boolean
  /**
   * send writes the answer to that connection if it is up and subscribed to exactly `topic` (AWS's
   * subscribe-before-publish); false when it was not sent.
   */
  send(topic: string, payload: Buffer): Promise<boolean>
}
