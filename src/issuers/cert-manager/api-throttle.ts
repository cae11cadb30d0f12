import { TokenBucket } from '../../common/token-bucket.js'

/** ApiThrottleOptions bound the bridge's load on the Kubernetes API server. */
export interface ApiThrottleOptions {
  readonly requestsPerSecond: number
  readonly burst: number
  readonly maxConcurrent: number
}

/** ApiThrottle is a client-side token bucket (rate) plus a semaphore (concurrency) for API requests. */
export class ApiThrottle {
  readonly #maxConcurrent: number
  readonly #bucket: TokenBucket
  #running = 0
  readonly #queue: (() => void)[] = []
  #timer: NodeJS.Timeout | undefined

  constructor(options: ApiThrottleOptions) {
    this.#maxConcurrent = options.maxConcurrent
    this.#bucket = new TokenBucket({ burst: options.burst, perSecond: options.requestsPerSecond }, () =>
      performance.now(),
    )
  }

  /** run waits for a token and a free slot, then runs `task`. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    await new Promise<void>((resolve) => {
      this.#queue.push(resolve)
      this.#drain()
    })
    try {
      return await task()
    } finally {
      this.#running--
      this.#drain()
    }
  }

  #drain(): void {
    while (this.#queue.length > 0 && this.#running < this.#maxConcurrent && !this.#timer) {
      const wait = this.#bucket.take()
      if (wait > 0) {
        this.#timer = setTimeout(() => {
          this.#timer = undefined
          this.#drain()
        }, wait)
        return
      }
      this.#running++
      this.#queue.shift()?.()
    }
  }
}
