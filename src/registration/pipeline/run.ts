import { LeaseLost } from '../in-flight.js'
import type { Done, Path, Pipeline, Registration, Steps } from './registration.js'

/**
 * run takes a registration through the steps until one ends it, then gives its lease up. A registration whose
 * lease another process took ends silent: that process, or the device's retry, answers. A step's error is the
 * answer's (the caller turns it into a `rejected` reply).
 */
export async function run(p: Pipeline, r: Registration, path: Path, steps: Steps): Promise<Done> {
  let done: Done | undefined
  try {
    for (const step of Object.values(steps)) {
      done = await step(p, r, path)
      if (done) break
    }
  } catch (err) {
    if (!(err instanceof LeaseLost)) throw err
    done = { silent: err.message }
  } finally {
    await r.lease?.release()
  }
  if (!done) throw new Error('the registration pipeline ended without an answer')
  return 'silent' in done && path.quiet ? path.quiet(done.silent) : done
}
