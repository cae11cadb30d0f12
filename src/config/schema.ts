import { z } from 'zod'
import { DNS_NAME } from '../pki/names.js'
import { KEY_ALGORITHMS } from '../protocol/messages.js'
import { isValidTopicName } from '../protocol/topics.js'

const port = z.number().int().min(0).max(65535)
const positiveInt = z.number().int().positive()
const topicName = z.string().refine(isValidTopicName, 'must be a topic name without wildcards')
const keyAlgorithm = z.enum(KEY_ALGORITHMS)
const dnsNamePattern = z
  .string()
  .refine((p) => DNS_NAME.test(p.replaceAll('{deviceId}', 'device-001')), 'is not a DNS name pattern')
const dns1123Label = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'must be a DNS-1123 label (lower case, digits, -)')
/** hookUrl: https://, or http:// to a loopback address only (a token or a decision must not cross a network in clear). */
const hookUrl = (u: string): boolean => {
  if (!URL.canParse(u)) return false
  const { protocol, hostname, username, password } = new URL(u)
  if (username !== '' || password !== '') return false // a secret in a setting is logged and listed: use a file
  if (protocol === 'https:') return true
  return protocol === 'http:' && /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/.test(hostname)
}
/** section is a group of settings: unknown keys are refused, and one left out is all its defaults. */
const section = <T extends z.ZodRawShape>(shape: T) => z.strictObject(shape).prefault({} as never)
/** A file path; unset paths default to files in the development PKI under stateDir. */
const filePath = z.string().min(1).optional()

/**
 * configSchema is the one description of every setting, its type, bounds and default.
 * docs/configuration.md lists the same settings; test/unit/config tests tie the two together.
 */
export const configSchema = z.strictObject({
  stateDir: z.string().min(1).default('.registration-bridge'),
  listen: section({ host: z.string().min(1).default('0.0.0.0'), port: port.default(8883) }),
  tls: section({ certFile: filePath, keyFile: filePath, clientCaFile: filePath }),
  identity: section({
    source: z.enum(['subject-cn', 'san-dns', 'san-uri']).default('subject-cn'),
    uriPrefix: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9+.-]*:[\x21-\x7e]*$/, 'must be a URI scheme and printable ASCII')
      .optional(),
  }).refine((i) => i.source !== 'san-uri' || i.uriPrefix !== undefined, {
    path: ['uriPrefix'],
    message: 'is required when identity.source is san-uri',
    when: (payload) => typeof payload.value === 'object' && payload.value !== null,
  }),
  topics: section({
    request: topicName.default('registration/request'),
    replyPrefix: topicName.default('registration'),
  }),
  limits: section({
    maxConnections: positiveInt.default(10_000),
    maxPacketBytes: positiveInt.min(1024).default(65_536),
    maxRequestBytes: positiveInt.default(16_384),
    connectTimeoutMs: positiveInt.default(10_000),
    maxClientIdLength: positiveInt.max(65_535).default(128),
    maxConnectionsPerIdentity: positiveInt.default(4),
    maxIdleSeconds: positiveInt.default(300),
    maxQueuedRepliesPerIdentity: z.number().int().min(0).default(4),
    maxSessionsPerIdentity: positiveInt.default(8),
    sessionExpirySeconds: positiveInt.default(86_400),
  }),
  registration: section({
    pendingAfterMs: positiveInt.default(2_000),
    timeoutMs: positiveInt.default(30_000),
    replyCacheSeconds: z.number().int().min(0).default(600),
    replyCacheMaxEntries: z.number().int().min(0).default(10_000),
    rateLimit: section({ burst: positiveInt.default(5), perMinute: z.number().positive().default(6) }),
    allowedKeyAlgorithms: z
      .array(keyAlgorithm)
      .min(1)
      .default([...KEY_ALGORITHMS]),
    defaultKeyAlgorithm: keyAlgorithm.default('ECDSA-P256'),
  }).refine((r) => r.allowedKeyAlgorithms.includes(r.defaultKeyAlgorithm), {
    path: ['defaultKeyAlgorithm'],
    message: 'must be one of registration.allowedKeyAlgorithms',
    // run even when other settings have problems, so that every problem is reported at once
    when: (payload) =>
      Array.isArray((payload.value as { allowedKeyAlgorithms?: unknown }).allowedKeyAlgorithms),
  }),
  certificate: section({
    validityHours: positiveInt.default(720),
    organization: z.string().min(1).optional(),
    dnsNames: z.array(dnsNamePattern).default([]),
    uris: z.array(z.string().min(1)).default([]),
    gatewayUris: z.array(z.string().min(1)).default([]),
  }),
  issuer: section({
    type: z.enum(['local-ca', 'cert-manager']).default('local-ca'),
    localCa: section({ certFile: filePath, keyFile: filePath, chainFile: filePath }),
    certManager: section({
      namespace: dns1123Label.default('mqtt-registration-bridge'),
      issuerRef: section({
        name: z.string().min(1).optional(),
        kind: z.enum(['Issuer', 'ClusterIssuer']).default('Issuer'),
        group: z.string().min(1).default('cert-manager.io'),
      }),
      /** Unset: in-cluster service account when running in a pod, else the default kubeconfig. */
      kubeconfig: filePath,
      secretRetention: z.enum(['delete', 'keep']).default('delete'),
      requestRetention: z.enum(['delete', 'keep']).default('delete'),
      apiRequestsPerSecond: z.number().positive().default(50),
      apiBurst: positiveInt.default(100),
      apiMaxConcurrent: positiveInt.default(32),
      /** The reconciler's period: leftovers nobody waits on are removed on start and every resync. */
      resyncSeconds: positiveInt.default(300),
      /** Watches as client-go's reflector does them. */
      watchBackoffInitialMs: positiveInt.default(800),
      watchBackoffMaxMs: positiveInt.default(30_000),
      watchBackoffResetSeconds: positiveInt.default(120),
      watchTimeoutSeconds: positiveInt.default(300),
    }),
  }).refine((i) => i.type !== 'cert-manager' || i.certManager?.issuerRef?.name !== undefined, {
    path: ['certManager', 'issuerRef', 'name'],
    message: 'is required when issuer.type is cert-manager',
    when: (payload) => typeof payload.value === 'object' && payload.value !== null,
  }),
  health: section({
    enabled: z.boolean().default(true),
    host: z.string().min(1).default('0.0.0.0'),
    port: port.default(8080),
    metrics: z.boolean().default(true),
    deviceCountsSeconds: z.number().positive().default(30),
  }),
  auditLog: filePath,
  production: section({ url: z.string().url().optional(), caFile: filePath }),
  shutdown: section({ gracePeriodMs: z.number().int().min(0).default(10_000) }),
  log: section({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  }),
  gateways: section({
    /** The gateway policy (YAML); unset: no identity is a gateway. Reloaded on change and on SIGHUP. */
    policyFile: filePath,
    /** Reload the policy file and the allow-lists it names when they change (SIGHUP reloads in any case). */
    watch: z.boolean().default(true),
    maxDevicesPerBatch: positiveInt.max(1000).default(100),
    maxRequestBytes: positiveInt.default(65_536),
    concurrency: positiveInt.max(256).default(8),
  }),
  registry: section({
    /** Unset: registry.sqlite in stateDir. */
    file: filePath,
  }),
  state: section({
    /** Unset: one process, state in memory. Set: leases, answers, rate limits and MQTT sessions in Redis. */
    redis: section({
      url: z
        .string()
        .regex(/^rediss?:\/\/\S+$/, 'must be a redis:// or rediss:// URL')
        .optional(),
      keyPrefix: z.string().min(1).default('mrb:'),
      commandTimeoutMs: positiveInt.default(2_000),
    }),
    /** Unset: the registry is SQLite (registry.file). Set: PostgreSQL, shared by every replica. */
    postgres: section({
      url: z
        .string()
        .regex(/^postgres(ql)?:\/\/\S+$/, 'must be a postgres:// URL')
        .optional(),
    }),
    leaseMs: positiveInt.min(100).default(10_000),
    /** Bridge processes on the listener port; 0: one per core with state.redis.url, else 1. */
    workers: z.number().int().min(0).max(256).default(0),
  }).refine((s) => s.workers <= 1 || s.redis.url !== undefined, {
    path: ['workers'],
    message: 'more than 1 worker needs state.redis.url (workers share state through Redis)',
    when: (payload) => typeof payload.value === 'object' && payload.value !== null,
  }),
  hook: section({
    /** The registration hook (docs/hook.md); unset: none. */
    url: z
      .string()
      .refine(hookUrl, 'must be an https:// URL (or http:// on a loopback address) without user or password')
      .optional(),
    timeoutMs: positiveInt.default(5_000),
    retries: z.number().int().min(0).max(5).default(2),
    /** Dangerous: a hook that cannot be asked allows every registration. */
    failOpen: z.boolean().default(false),
    maxConcurrent: positiveInt.max(1024).default(64),
    retryAfterSeconds: positiveInt.default(30),
    /** Not ready after this many failed calls in a row (fail-closed only); 0: never. */
    unreadyAfterFailures: z.number().int().min(0).default(5),
    caFile: filePath,
    clientCertFile: filePath,
    clientKeyFile: filePath,
    /** The bearer token (the file's content, trimmed), re-read when the file changes. */
    bearerTokenFile: filePath,
  }).refine((h) => (h.clientCertFile === undefined) === (h.clientKeyFile === undefined), {
    path: ['clientKeyFile'],
    message: 'hook.clientCertFile and hook.clientKeyFile go together',
    when: (payload) => typeof payload.value === 'object' && payload.value !== null,
  }),
  aws: section({
    /** Speak AWS IoT fleet provisioning on the $aws/... topics too (docs/aws-fleet-provisioning.md). */
    enabled: z.boolean().default(false),
    /** Provisioning templates (YAML) RegisterThing may name; unset: none (every RegisterThing: TemplateNotFound). */
    templatesFile: filePath,
    /** Reload the templates file when it changes (SIGHUP reloads it in any case). */
    watchTemplates: z.boolean().default(true),
    /** How long a create call's ownership token (and its pending certificate) waits for RegisterThing. */
    tokenLifetimeSeconds: positiveInt.max(86_400).default(3_600),
  }),
  lifecycle: section({
    /** The listener also trusts the CA of operational certificates, so that devices renew with them. */
    trustOperationalCa: z.boolean().default(true),
    /** PEM bundle of that CA; unset: the embedded CA's certificate (required with cert-manager to renew). */
    operationalCaFile: filePath,
    /** What a factory-certificate registration of an identity with a valid operational certificate gets. */
    reRegistration: z.enum(['refuse', 'allow', 'after-reset']).default('refuse'),
    renewal: section({
      windowFraction: z.number().gt(0).max(1).default(0.5),
      requireNewKey: z.boolean().default(true),
      allowServerKey: z.boolean().default(true),
      rateLimit: section({ burst: positiveInt.default(2), perMinute: z.number().positive().default(1) }),
    }),
    /** Deny list (YAML: identities, serials, fingerprints); reloaded on change and on SIGHUP. */
    denyListFile: filePath,
    /** Reload the deny list when its file changes (SIGHUP reloads it in any case). */
    watchDenyList: z.boolean().default(true),
    crl: section({
      /** Unset: crl.pem in stateDir. Written by the embedded CA only. */
      file: filePath,
      validityHours: positiveInt.default(24),
    }),
  }),
})

/** RawConfig is the validated configuration before file paths are resolved. */
export type RawConfig = z.infer<typeof configSchema>
