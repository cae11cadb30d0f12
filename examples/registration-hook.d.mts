// Types of examples/registration-hook.mjs, for the tests that start it.

export interface HookCallBody {
  readonly version: number
  readonly callId: string
  readonly identity: string
  readonly kind: 'registration' | 'renewal'
  readonly event: string | null
  readonly gateway: string | null
  readonly requestId: string | null
  readonly keySource: 'csr' | 'server-key'
  readonly keyAlgorithm: string
  readonly renewing: string | null
  readonly certificate: {
    readonly commonName: string
    readonly organization: string | null
    readonly dnsNames: readonly string[]
    readonly uris: readonly string[]
    readonly validityHours: number
  }
}

export interface HookResponse {
  readonly status?: number
  readonly body: unknown
}

export interface InventoryEntry {
  readonly endpoint?: string
  readonly validityHours?: number
  readonly dnsNames?: readonly string[]
  readonly uris?: readonly string[]
}

export interface Inventory {
  readonly devices?: Readonly<Record<string, InventoryEntry>>
}

export function inventoryDecision(inventory: Inventory): (call: HookCallBody) => HookResponse

export interface RunningHook {
  readonly url: string
  readonly port: number
  readonly calls: HookCallBody[]
  /** TLS connections accepted so far. */
  readonly connections: number
  close(): Promise<void>
}

export function startHook(options: {
  key: string
  cert: string
  clientCa?: string
  token?: string | (() => string)
  host?: string
  port?: number
  inventory?: Inventory
  decide?: (call: HookCallBody) => HookResponse | Promise<HookResponse>
  log?: (fields: Record<string, unknown>) => void
}): Promise<RunningHook>
