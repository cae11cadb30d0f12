/** ApiThrottleOptions bound the bridge's load on the Kubernetes API server. */
export interface ApiThrottleOptions {
  readonly requestsPerSecond: number
  readonly burst: number
  readonly maxConcurrent: number
}

/** ApiThrottle is a client-side token bucket (rate) plus a semaphore (concurrency) for API requests. */
export class ApiThrottle {
  readonly #options: ApiThrottleOptions
  #tokens: number
  #updatedAt = performance.now()
  #running = 0
  readonly #queue: (() => void)[] = []
  #timer: NodeJS.Timeout | undefined

  constructor(options: ApiThrottleOptions) {
    this.#options = options
    this.#tokens = options.burst
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
    const now = performance.now()
    const { requestsPerSecond, burst, maxConcurrent } = this.#options
    this.#tokens = Math.min(burst, this.#tokens + ((now - this.#updatedAt) * requestsPerSecond) / 1000)
    this.#updatedAt = now
    while (this.#queue.length > 0 && this.#running < maxConcurrent && this.#tokens >= 1) {
      this.#tokens -= 1
      this.#running++
      this.#queue.shift()?.()
    }
    if (this.#queue.length > 0 && this.#running < maxConcurrent && !this.#timer) {
      const wait = Math.ceil(((1 - this.#tokens) * 1000) / requestsPerSecond)
      this.#timer = setTimeout(() => {
        this.#timer = undefined
        this.#drain()
      }, wait)
    }
  }
}
