// app/ imports the type from here; it is inferred from what createMetrics makes.
export type { BridgeMetrics } from './metrics.js'
