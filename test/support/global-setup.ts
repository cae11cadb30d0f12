import { execFileSync } from 'node:child_process'

/** Builds dist/ once before the tests, so tests of the CLI run the code under test, never a stale build. */
export default function setup(): void {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' })
}
