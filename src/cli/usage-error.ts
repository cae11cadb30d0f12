/** UsageError is a flag with a value the command cannot use; the CLI prints it with the help and exits 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError'
}

/** positiveNumber reads a numeric flag, or throws a UsageError naming it. */
export function positiveNumber(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) {
    throw new UsageError(`--${flag} must be a positive number, not "${value}"`)
  }
  return n
}
