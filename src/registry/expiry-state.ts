// A type of its own, so that registry.ts (which counts by it) and expiry.ts (which classifies a DeviceSummary)
// do not import each other.

/** ExpiryState is where an identity's newest certificate stands: the four counts an operator looks at. */
export type ExpiryState = 'active' | 'expiring' | 'expired' | 'revoked'
