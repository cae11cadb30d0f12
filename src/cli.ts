#!/usr/bin/env node
import { parseArgs } from 'node:util'
import { DEVICES_HELP, DEVICES_OPTIONS, devicesCommand } from './cli/devices.js'
import { INIT_HELP, INIT_OPTIONS, init } from './cli/init.js'
import { REGISTER_HELP, REGISTER_OPTIONS, registerCommand } from './cli/register.js'
import { REVOKE_HELP, REVOKE_OPTIONS, revokeCommand } from './cli/revoke.js'
import { SERVE_HELP, SERVE_OPTIONS, serve } from './cli/serve.js'
import { UsageError } from './cli/usage-error.js'
import { RegistrationRejectedError } from './client/register.js'
import { ConfigError } from './config/load.js'

const USAGE = `Usage: registration-bridge <command> [options]

Commands:
  serve      run the bridge (embedded CA and a development PKI by default)
  init       write a development PKI
  register   register a device: factory certificate in, operational credentials out
  devices    list the identities the bridge has issued for, show, count or reset one
  revoke     revoke an identity's or one serial's certificates (registry, audit log, CRL)

Run 'registration-bridge <command> --help' for a command's options.`

const COMMANDS = {
  serve: { help: SERVE_HELP, options: SERVE_OPTIONS, run: serve },
  init: { help: INIT_HELP, options: INIT_OPTIONS, run: init },
  register: { help: REGISTER_HELP, options: REGISTER_OPTIONS, run: registerCommand },
  devices: { help: DEVICES_HELP, options: DEVICES_OPTIONS, positionals: true, run: devicesCommand },
  revoke: { help: REVOKE_HELP, options: REVOKE_OPTIONS, run: revokeCommand },
} as const

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (!name || name === '--help' || name === '-h') {
    process.stdout.write(`${USAGE}\n`)
    return name ? 0 : 2
  }
  const command = COMMANDS[name as keyof typeof COMMANDS]
  if (!command) {
    process.stderr.write(`unknown command "${name}"\n\n${USAGE}\n`)
    return 2
  }
  let values: Record<string, unknown>
  try {
    const allowPositionals = 'positionals' in command
    const parsed = parseArgs({
      args: rest,
      options: { ...command.options, help: { type: 'boolean', short: 'h' } },
      allowPositionals,
    })
    values = allowPositionals ? { ...parsed.values, _: parsed.positionals } : parsed.values
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${command.help}\n`)
    return 2
  }
  if (values.help) {
    process.stdout.write(`${command.help}\n`)
    return 0
  }
  try {
    await (command.run as (flags: Record<string, unknown>) => Promise<void>)(values)
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    // a flag the command cannot use: refused before anything is read, opened or sent, with the command's help
    process.stderr.write(`${err.message}\n\n${command.help}\n`)
    return 2
  }
  return 0
}

const argv = process.argv.slice(2)
main(argv).then(
  (code) => {
    if (code !== 0) process.exitCode = code
  },
  (err: unknown) => {
    if (err instanceof ConfigError || err instanceof UsageError) {
      process.stderr.write(`${err.message}\n`)
      process.exitCode = 2
    } else if (err instanceof RegistrationRejectedError) {
      process.stderr.write(`registration rejected: ${err.message}\n`)
      process.exitCode = 1
    } else {
      process.stderr.write(`error: ${(err as Error).message ?? String(err)}\n`)
      process.exitCode = 1
    }
    // serve failed to start and has closed what it opened: exit now, never wait on anything left behind (a
    // cluster worker's IPC channel alone would keep it alive, half-up, with nothing listening)
    if (argv[0] === 'serve') process.exit()
  },
)
