#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { runSoak } from './soak.js';

/**
 * `node dist/test/soak/soak-main.js [--duration 120] [--queue sqlite|postgres] [--seed N]
 *  [--kill-min 3] [--kill-max 8] [--reports 10] [--rate 3] [--overlap 300] [--log-level warn] [--events] [--no-request-token] [--no-warm-up] [--keep] [--quiet]`
 * `--events`: the hosts also take Concur's push events on a loopback port, delivered with duplicates, reordering and drops.
 * Exits 0 when missing, stale, duplicate and lost deliveries are all 0 (and no host crashed), else 1; 2 on bad usage.
 */
const usage =
  'usage: soak-main [--duration SECONDS] [--queue sqlite|postgres] [--seed N] [--kill-min S] [--kill-max S] [--reports N] [--rate ACTIONS_PER_S] [--overlap SECONDS] [--log-level LEVEL] [--events] [--no-request-token] [--no-warm-up] [--keep] [--quiet]';

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        duration: { type: 'string', default: '120' },
        queue: { type: 'string', default: 'sqlite' },
        seed: { type: 'string', default: String(Date.now() % 1_000_000) },
        'kill-min': { type: 'string', default: '3' },
        'kill-max': { type: 'string', default: '8' },
        reports: { type: 'string', default: '10' },
        rate: { type: 'string', default: '3' },
        overlap: { type: 'string' },
        'log-level': { type: 'string', default: 'warn' },
        events: { type: 'boolean', default: false },
        'no-request-token': { type: 'boolean', default: false },
        'no-warm-up': { type: 'boolean', default: false },
        keep: { type: 'boolean', default: false },
        quiet: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
      strict: true,
    }));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${usage}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  const num = (name: string, v: string | undefined): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new RangeError(`--${name} must be a non-negative number, not "${v}"`);
    return n;
  };
  try {
    if (values.queue !== 'sqlite' && values.queue !== 'postgres') throw new RangeError(`--queue must be sqlite or postgres, not "${values.queue}"`);
    const result = await runSoak({
      durationSeconds: num('duration', values.duration),
      queue: values.queue,
      seed: Math.trunc(num('seed', values.seed)),
      killEverySeconds: [num('kill-min', values['kill-min']), num('kill-max', values['kill-max'])],
      reports: Math.trunc(num('reports', values.reports)),
      actionsPerSecond: num('rate', values.rate),
      ...(values.overlap === undefined ? {} : { overlapSeconds: num('overlap', values.overlap) }),
      keepDir: values.keep,
      events: values.events,
      requestTokenFallback: !values['no-request-token'],
      warmUp: !values['no-warm-up'],
      hostLogLevel: values['log-level'],
      quiet: false,
      print: (line) => {
        if (!values.quiet || !line.startsWith('[soak ')) process.stdout.write(`${line}\n`);
      },
    });
    return result.ok ? 0 : 1;
  } catch (error) {
    process.stderr.write(`${error instanceof RangeError ? '' : 'soak failed: '}${(error as Error).stack ?? String(error)}\n`);
    return error instanceof RangeError ? 2 : 1;
  }
}

// Exit explicitly: a hung socket the chaos profile held open must not keep the process alive.
process.exit(await main());
