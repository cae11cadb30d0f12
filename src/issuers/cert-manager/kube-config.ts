import type { Agent, AgentOptions } from 'node:https'
import { KubeConfig } from '@kubernetes/client-node'

/** loadKubeConfig finds cluster credentials the way kubectl and in-cluster clients do. */
export function loadKubeConfig(file: string | undefined): KubeConfig {
  const kc = new KubeConfig()
  if (file) kc.loadFromFile(file)
  else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster()
  else kc.loadFromDefault()
  return reuseConnections(kc)
}

type AgentFactory = (cluster: unknown, options: AgentOptions) => Agent

/**
 * reuseConnections makes client-node keep its connections to the API server. client-node 1.4 builds a new
 * https.Agent for every request (KubeConfig's private createAgent), so every API call pays a TLS handshake;
 * one keep-alive agent (the TLS options are the same for every request of one kubeconfig) makes a
 * registration's writes cheap. This patches a private method: it throws at start-up if the method is gone,
 * and test/integration/cert-manager-client.test.ts fails when client-node stops routing requests through it.
 */
export function reuseConnections(kc: KubeConfig): KubeConfig {
  const target = kc as unknown as { createAgent?: AgentFactory }
  if (typeof target.createAgent !== 'function')
    throw new Error('@kubernetes/client-node no longer has KubeConfig.createAgent: review reuseConnections')
  const create = target.createAgent.bind(kc)
  let shared: Agent | undefined
  target.createAgent = (cluster, options) => {
    shared ??= create(cluster, { ...options, keepAlive: true, maxSockets: 64 })
    return shared
  }
  return kc
}
