import { once } from 'node:events'
import { createServer } from 'node:net'

/** freePort asks the kernel for a free loopback port, for programs that cannot bind port 0 and report it. */
export async function freePort(): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  server.close()
  await once(server, 'close')
  return port
}
