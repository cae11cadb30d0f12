// aedes-persistence-redis ships no types; the class Aedes 1.x takes as its (async) persistence
declare module 'aedes-persistence-redis/asyncPersistence.js' {
  import type { Redis } from 'ioredis'

  interface AsyncRedisPersistenceOptions {
    conn?: Redis
    packetTTL?: (packet: unknown) => number
    maxSessionDelivery?: number
  }
  class AsyncRedisPersistence {
    constructor(options?: AsyncRedisPersistenceOptions)
    setup(broker: unknown): Promise<void>
    destroy(): Promise<void>
  }
  export default AsyncRedisPersistence
}
