/** ResourceType describes one emulated API resource, as discovery documents do. */
export interface ResourceType {
  readonly group: string
  readonly version: string
  readonly plural: string
  readonly singular: string
  readonly kind: string
  readonly namespaced: boolean
  readonly shortNames: readonly string[]
  /** CRDs here have a status subresource; core Secrets do not, and have no generation. */
  readonly hasStatus: boolean
}

const cm = (plural: string, kind: string, namespaced: boolean, shortNames: string[]): ResourceType => ({
  group: 'cert-manager.io',
  version: 'v1',
  plural,
  singular: kind.toLowerCase(),
  kind,
  namespaced,
  shortNames,
  hasStatus: true,
})

/** RESOURCES are the resources the emulated API server serves. */
export const RESOURCES: readonly ResourceType[] = [
  cm('certificates', 'Certificate', true, ['cert', 'certs']),
  cm('certificaterequests', 'CertificateRequest', true, ['cr', 'crs']),
  cm('issuers', 'Issuer', true, []),
  cm('clusterissuers', 'ClusterIssuer', false, []),
  {
    group: '',
    version: 'v1',
    plural: 'secrets',
    singular: 'secret',
    kind: 'Secret',
    namespaced: true,
    shortNames: [],
    hasStatus: false,
  },
  {
    group: '',
    version: 'v1',
    plural: 'namespaces',
    singular: 'namespace',
    kind: 'Namespace',
    namespaced: false,
    shortNames: ['ns'],
    hasStatus: true,
  },
]

/** qualifiedName is how the API server names a resource in messages: `certificates.cert-manager.io`, `secrets`. */
export const qualifiedName = (r: ResourceType): string => (r.group ? `${r.plural}.${r.group}` : r.plural)

/** apiVersionOf is the apiVersion of a resource's objects. */
export const apiVersionOf = (r: ResourceType): string => (r.group ? `${r.group}/${r.version}` : r.version)

/** findResource looks a resource up by group and plural. */
export function findResource(group: string, plural: string): ResourceType | undefined {
  return RESOURCES.find((r) => r.group === group && r.plural === plural)
}

/** discovery builds the discovery documents kubectl and client libraries read. */
export function discovery(path: string): object | undefined {
  const resourceList = (group: string, version: string) => ({
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: group ? `${group}/${version}` : version,
    resources: RESOURCES.filter((r) => r.group === group).flatMap((r) => [
      {
        name: r.plural,
        singularName: r.singular,
        namespaced: r.namespaced,
        kind: r.kind,
        verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'],
        ...(r.shortNames.length ? { shortNames: r.shortNames } : {}),
        ...(r.group ? { categories: ['cert-manager'] } : {}),
      },
      ...(r.hasStatus
        ? [
            {
              name: `${r.plural}/status`,
              singularName: '',
              namespaced: r.namespaced,
              kind: r.kind,
              verbs: ['get', 'patch', 'update'],
            },
          ]
        : []),
    ]),
  })
  switch (path) {
    case '/api':
      return {
        kind: 'APIVersions',
        versions: ['v1'],
        serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '127.0.0.1:6443' }],
      }
    case '/api/v1':
      return resourceList('', 'v1')
    case '/apis':
      return {
        kind: 'APIGroupList',
        apiVersion: 'v1',
        groups: [
          {
            name: 'cert-manager.io',
            versions: [{ groupVersion: 'cert-manager.io/v1', version: 'v1' }],
            preferredVersion: { groupVersion: 'cert-manager.io/v1', version: 'v1' },
          },
        ],
      }
    case '/apis/cert-manager.io/v1':
      return resourceList('cert-manager.io', 'v1')
    case '/version':
      return { major: '1', minor: '32', gitVersion: 'v1.32.0-emulated', platform: 'linux/amd64' }
    default:
      return undefined
  }
}
