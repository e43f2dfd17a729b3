// baton's command line: one table of commands, each with its usage and options, so `--help`,
// unknown flags and every user mistake get the same treatment — a `baton: …` line saying what
// to do, the command's usage, and an exit code (README "Command line"):
//   0 done · 1 failed (a BATON_ERR_* error) · 2 usage error · 130 interrupted.
// Stacks are printed only with --debug (or for a bug of baton's own).
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { BatonError } from '../errors.ts';
import { COMMANDS, UsageError, type Command } from './commands.ts';

const VERSION_URL = new URL('../../package.json', import.meta.url);

function overview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'usage: baton <command> [options]      baton <command> --help',
    '',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'options for every command: --help, --debug (stack traces, debug logging); baton --version',
  ].join('\n');
}

function help(cmd: Command): string {
  return `usage: ${cmd.usage}\n\n${cmd.summary}\n${cmd.details ? `\n${cmd.details}\n` : ''}`;
}

async function run(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const cmd = COMMANDS.find((c) => c.name === rest[0]);
    console.log(cmd ? help(cmd) : overview());
    return;
  }
  if (name === '--version' || name === '-v') {
    const { readFileSync } = await import('node:fs');
    console.log((JSON.parse(readFileSync(VERSION_URL, 'utf8')) as { version: string }).version);
    return;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) throw new UsageError(`unknown command '${name}'`);
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(help(cmd));
    return;
  }
  let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] };
  try {
    const options: ParseArgsConfig['options'] = { ...cmd.options, debug: { type: 'boolean' } };
    parsed = parseArgs({ args: rest, allowPositionals: true, strict: true, options }) as typeof parsed;
  } catch (err) {
    // node:util's messages are good; its stack is not for users
    throw new UsageError((err as Error).message, cmd);
  }
  await cmd.run(parsed.values, parsed.positionals);
}

const argv = process.argv.slice(2);
const debug = argv.includes('--debug');

// process.exit() runs 'exit' handlers (the bench stops what it started); a signal would not
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  if (argv[0] !== 'up') process.once(signal, () => process.exit(130));
}

run(argv).catch((err: unknown) => {
  if (err instanceof UsageError) {
    console.error(`baton: ${err.message}\n\n${err.command ? `usage: ${err.command.usage}\n(baton ${err.command.name} --help for more)` : overview()}`);
    process.exit(2);
  }
  if (err instanceof BatonError) console.error(`baton: ${err.code}: ${err.message}${debug && err.stack ? `\n${err.stack}` : ''}`);
  else console.error(`baton: unexpected error (a bug of baton's; please report it with this stack):\n${(err as Error)?.stack ?? err}`);
  process.exit(1);
});
