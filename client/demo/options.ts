import { parseArgs } from 'node:util';
import { z } from 'zod';
import { UserFacingError } from '../../infra/errors';

/**
 * `npm run demo` flags, each with an environment twin (MLOPS_DEMO_*) so a test or CI can shrink
 * the run without touching the command line. Flags win over the environment.
 */

const MONTH = /^2001-0[1-6]$/;
const DB_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

const num = (min: number, max: number) => z.coerce.number().min(min).max(max);
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const bool = z
  .union([z.boolean(), z.enum(['1', '0', 'true', 'false', 'yes', 'no', 'on', 'off'])])
  .transform((v) => v === true || v === '1' || v === 'true' || v === 'yes' || v === 'on');

export const demoOptions = z
  .object({
    /** Rows sampled (deterministically) from each served month and sent to the model server. */
    rows: int(200, 100_000).default(3000),
    /** Rows per inference request. */
    batch: int(1, 1000).default(25),
    /** Wall-clock seconds one month of traffic takes (accelerated time). */
    monthSeconds: num(2, 3600).default(40),
    /** First and last served month (January is the training month). */
    from: z.string().regex(MONTH, 'must be a month 2001-02 … 2001-06').default('2001-02'),
    to: z.string().regex(MONTH, 'must be a month 2001-02 … 2001-06').default('2001-06'),
    /** Training sample and GBDT rounds of every retrain. */
    trainRows: int(1000, 1_000_000).default(60_000),
    rounds: int(1, 1000).default(30),
    /** Monitoring period and the smallest window it judges (see the README: categorical PSI is noisy on small windows). */
    periodSeconds: num(1, 3600).default(5),
    minRows: int(1, 1_000_000).default(2500),
    minLabeledRows: int(1, 1_000_000).default(500),
    /** Monitoring's maxCalibrationGap (|delay rate − mean prediction| on labelled rows). */
    calibrationGap: num(0, 1).default(0.03),
    /** Canary bake per step. */
    bakeSeconds: num(0, 3600).default(8),
    /** Fraction of the next month's replay after which a month's labels arrive (all at once). */
    labelDelay: num(0, 1).default(0.3),
    seed: int(0, 1_000_000).default(7),
    /** How a served month's data reaches the lifecycle: the datasetWatcher workflow finds the file, or the demo signals newData itself. */
    newData: z.enum(['watcher', 'signal']).default('watcher'),
    /** Whole run, stack start included; past it the demo stops with an error. */
    timeoutMinutes: num(1, 600).default(20),
    stateDir: z.string().min(1).optional(),
    database: z.string().regex(DB_NAME, 'must be a lowercase SQL identifier').default('mlops_demo'),
    /** Leave the stack up after the report (until Ctrl-C). */
    keep: bool.default(false),
    help: bool.default(false),
  })
  .strict()
  .refine((o) => o.from <= o.to, { message: 'from must not be after to', path: ['from'] });

export type DemoOptions = z.output<typeof demoOptions>;

/** flag name → environment variable; the flag is the camelCase key in kebab-case. */
const FLAGS: Array<{ key: keyof DemoOptions; flag: string; env: string; boolean?: boolean; help: string }> = [
  { key: 'rows', flag: 'rows', env: 'MLOPS_DEMO_ROWS', help: 'rows sampled per served month (3000)' },
  { key: 'batch', flag: 'batch', env: 'MLOPS_DEMO_BATCH', help: 'rows per inference request (25)' },
  { key: 'monthSeconds', flag: 'month-seconds', env: 'MLOPS_DEMO_MONTH_SECONDS', help: 'seconds of wall time per month of traffic (40)' },
  { key: 'from', flag: 'from', env: 'MLOPS_DEMO_FROM', help: 'first served month (2001-02)' },
  { key: 'to', flag: 'to', env: 'MLOPS_DEMO_TO', help: 'last served month (2001-06)' },
  { key: 'trainRows', flag: 'train-rows', env: 'MLOPS_DEMO_TRAIN_ROWS', help: 'training sample per retrain (60000)' },
  { key: 'rounds', flag: 'rounds', env: 'MLOPS_DEMO_ROUNDS', help: 'GBDT rounds per retrain (30)' },
  { key: 'periodSeconds', flag: 'period', env: 'MLOPS_DEMO_PERIOD_SECONDS', help: 'monitoring period in seconds (5)' },
  { key: 'minRows', flag: 'min-rows', env: 'MLOPS_DEMO_MIN_ROWS', help: 'monitoring: rows a window needs for a verdict (2500)' },
  { key: 'minLabeledRows', flag: 'min-labeled-rows', env: 'MLOPS_DEMO_MIN_LABELED_ROWS', help: 'monitoring: labelled rows for performance figures (500)' },
  { key: 'calibrationGap', flag: 'calibration-gap', env: 'MLOPS_DEMO_CALIBRATION_GAP', help: 'monitoring: largest |delay rate − mean prediction| (0.03; platform default 0.05)' },
  { key: 'bakeSeconds', flag: 'bake', env: 'MLOPS_DEMO_BAKE_SECONDS', help: 'canary bake per step in seconds (8)' },
  { key: 'labelDelay', flag: 'label-delay', env: 'MLOPS_DEMO_LABEL_DELAY', help: "how far into the next month a month's labels arrive, 0–1 (0.3)" },
  { key: 'newData', flag: 'new-data', env: 'MLOPS_DEMO_NEW_DATA', help: 'watcher: datasetWatcher finds each month file; signal: the demo signals newData (watcher)' },
  { key: 'seed', flag: 'seed', env: 'MLOPS_DEMO_SEED', help: 'sampling seed (7)' },
  { key: 'timeoutMinutes', flag: 'timeout-minutes', env: 'MLOPS_DEMO_TIMEOUT_MINUTES', help: 'give up after this long (20)' },
  { key: 'stateDir', flag: 'state-dir', env: 'MLOPS_DEMO_STATE_DIR', help: 'wiped and used for logs, artifacts, data, report (<MLOPS_STATE_DIR>/demo)' },
  { key: 'database', flag: 'database', env: 'MLOPS_DEMO_DATABASE', help: 'database on the local PostgreSQL, dropped and recreated (mlops_demo)' },
  { key: 'keep', flag: 'keep', env: 'MLOPS_DEMO_KEEP', boolean: true, help: 'leave the stack up after the report, until Ctrl-C' },
  { key: 'help', flag: 'help', env: 'MLOPS_DEMO_HELP', boolean: true, help: 'this text' },
];

export function demoUsage(): string {
  return [
    'usage: npm run demo [-- --rows 3000 --month-seconds 40 …]',
    ...FLAGS.map((f) => `  --${f.flag.padEnd(18)} ${f.env.padEnd(28)} ${f.help}`),
    '',
  ].join('\n');
}

export function parseDemoOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): DemoOptions {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: argv,
      options: Object.fromEntries(FLAGS.map((f) => [f.flag, { type: f.boolean ? 'boolean' : 'string' } as const])),
      strict: true,
    }).values;
  } catch (err) {
    throw new UserFacingError(`${(err as Error).message}\n${demoUsage()}`);
  }
  const raw: Record<string, unknown> = {};
  for (const f of FLAGS) {
    const v = values[f.flag] ?? (env[f.env] !== undefined && env[f.env] !== '' ? env[f.env] : undefined);
    if (v !== undefined) raw[f.key] = v;
  }
  const parsed = demoOptions.safeParse(raw);
  if (!parsed.success) {
    const byKey = new Map(FLAGS.map((f) => [f.key as string, f]));
    throw new UserFacingError(
      parsed.error.issues
        .map((i) => {
          const f = byKey.get(String(i.path[0]));
          return `${f ? `--${f.flag} (${f.env})` : i.path.join('.') || 'options'}: ${i.message}`;
        })
        .join('; '),
    );
  }
  return parsed.data;
}
