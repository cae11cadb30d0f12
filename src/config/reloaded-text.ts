import { readFileSync } from 'node:fs'

/**
 * readReloadedText reads a file the bridge reloads while it runs (deny list, gateway policy, allow-list) as
 * UTF-8, refusing what a write cut short leaves, as it refuses an unreadable file:
 * - an empty file, or one of white space only (`: > file`, a truncating save): an operator who means "nothing"
 *   writes it explicitly (e.g. `identities: []`);
 * - a file whose last line has no newline: cut mid-line, a list still parses (`- devi`), one entry short or
 *   with a stray one. Text files end with a newline; editors and `echo` write one.
 */
export function readReloadedText(path: string): string {
  const text = readFileSync(path, 'utf8')
  if (text.trim() === '') throw new Error(`${path} is empty; write an empty list explicitly`)
  if (!text.endsWith('\n')) throw new Error(`${path}: the last line has no newline (a write cut short?)`)
  return text
}
