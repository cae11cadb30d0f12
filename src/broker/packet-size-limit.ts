/**
 * Aedes 1.2 has no maximum packet size. Its per-connection parser (mqtt-packet) reads a packet's remaining
 * length before it buffers the payload; we check the length there, so an oversized packet closes the
 * connection before its bytes are held in memory. This touches Aedes internals: aedes is pinned, and
 * test/integration/limits.test.ts fails if the hook stops working.
 */
interface ParserInternals {
  packet: { length: number }
  _parseLength(): boolean
  _emitError(err: Error): void
}

/** limitPacketSize makes an Aedes client's parser refuse packets whose remaining length exceeds `maxBytes`. */
export function limitPacketSize(client: unknown, maxBytes: number): void {
  const parser = (client as { _parser?: ParserInternals })._parser
  if (!parser || typeof parser._parseLength !== 'function') {
    throw new Error('aedes client has no mqtt-packet parser; the packet size limit cannot be enforced')
  }
  const parseLength = parser._parseLength
  parser._parseLength = function limitedParseLength(this: ParserInternals): boolean {
    const done = parseLength.call(this)
    if (done && this.packet.length > maxBytes) {
      this._emitError(new Error(`packet of ${this.packet.length} bytes exceeds the limit of ${maxBytes}`))
      return false
    }
    return done
  }
}
