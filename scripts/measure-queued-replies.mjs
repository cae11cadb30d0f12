// Measures the memory of replies kept for offline persistent sessions (docs/protocol.md, "Offline delivery").
// Run after `npm run build`: node --expose-gc scripts/measure-queued-replies.mjs [payload bytes]
import { boundedPersistence } from '../dist/broker/bounded-persistence.js'

const payloadBytes = Number(process.argv[2] ?? 1950) // an ECDSA P-256 server-key reply is about 1.9 KB
const identities = 10_000
const perIdentity = 4
const used = () => {
  globalThis.gc?.()
  const m = process.memoryUsage()
  return m.heapUsed + m.arrayBuffers
}
const before = used()
const persistence = boundedPersistence({
  maxQueuedRepliesPerIdentity: perIdentity,
  maxQueuedReplies: identities * perIdentity,
  queuedReplyTtlMs: 600_000,
  maxSessionsPerIdentity: perIdentity,
  sessionExpiryMs: 86_400_000,
  logger: { warn() {}, debug() {} }, // nothing overflows or expires here
})
let counter = 0
for (let i = 0; i < identities; i++) {
  const topic = `registration/device-${i}/reply`
  for (let j = 0; j < perIdentity; j++) {
    const packet = {
      ...{
        cmd: 'publish',
        topic,
        payload: Buffer.alloc(payloadBytes, 120),
        qos: 1,
        retain: false,
        dup: false,
      },
      ...{ brokerId: 'measure', brokerCounter: counter++ },
    }
    await persistence.outgoingEnqueueCombi([{ clientId: `device-${i}:c${j}`, topic, qos: 1 }], packet)
  }
}
const total = used() - before
const replies = identities * perIdentity
console.log(
  JSON.stringify({
    replies,
    payloadBytes,
    totalMiB: Number((total / 2 ** 20).toFixed(1)),
    bytesPerReply: Math.round(total / replies),
  }),
)
persistence.destroy()
