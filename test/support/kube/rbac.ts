import { readFileSync } from 'node:fs'
import { parseAllDocuments } from 'yaml'
import type { ResourceType } from './resources.js'
import { ApiError } from './status.js'

/** PolicyRule is one rule of a Role or ClusterRole. */
export interface PolicyRule {
  readonly apiGroups: string[]
  readonly resources: string[]
  readonly verbs: string[]
  readonly resourceNames?: string[]
}

/** Grant is what one bearer token may do: a Role's rules in its namespace (or a ClusterRole's everywhere). */
export interface Grant {
  readonly user: string
  /** Roles (namespace set) and ClusterRoles (namespace undefined) bound to the user. */
  readonly roles: { readonly namespace?: string; readonly rules: PolicyRule[] }[]
}

/** rolesFromYaml reads every Role (bound in `namespace`) and ClusterRole of a manifest file. */
export function rolesFromYaml(file: string, namespace: string): Grant['roles'] {
  return parseAllDocuments(readFileSync(file, 'utf8'))
    .map((d) => d.toJSON() as { kind?: string; rules?: PolicyRule[] })
    .filter((d) => d?.kind === 'Role' || d?.kind === 'ClusterRole')
    .map((d) => ({ ...(d.kind === 'Role' ? { namespace } : {}), rules: d.rules ?? [] }))
}

const has = (list: string[] | undefined, value: string): boolean =>
  !!list && (list.includes('*') || list.includes(value))

/**
 * authorize is kube-apiserver's RBAC decision for one request: allowed when some rule names the group, the
 * resource (`plural` or `plural/subresource`), the verb and (if the rule lists any) the object's name, in the
 * grant's namespace. Otherwise 403 Forbidden with the real message.
 */
export function authorize(
  grant: Grant,
  request: { verb: string; resource: ResourceType; subresource?: string; namespace?: string; name?: string },
): void {
  const { verb, resource, subresource, namespace, name } = request
  const plural = subresource ? `${resource.plural}/${subresource}` : resource.plural
  const allowed = grant.roles.some(
    (role) =>
      (role.namespace === undefined || (resource.namespaced && namespace === role.namespace)) &&
      role.rules.some(
        (r) =>
          has(r.apiGroups, resource.group) &&
          has(r.resources, plural) &&
          has(r.verbs, verb) &&
          (!r.resourceNames?.length || (name !== undefined && r.resourceNames.includes(name))),
      ),
  )
  if (allowed) return
  const where =
    resource.namespaced && namespace ? ` in the namespace "${namespace}"` : ' at the cluster scope'
  throw new ApiError(
    403,
    'Forbidden',
    `${plural}${name ? ` "${name}"` : ''} is forbidden: User "${grant.user}" cannot ${verb} resource "${plural}" in API group "${resource.group}"${where}`,
    { ...(name ? { name } : {}), group: resource.group, kind: resource.plural },
  )
}
