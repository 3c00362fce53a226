import { UserFacingError } from '../infra/errors';
/** The CLI's commands and usage; client/cli.ts is the entry point that runs them. */
import { retrain, policy } from './commands/lifecycle';
import { models } from './commands/models';
import { moveStep } from './commands/move-step';
import { schema } from './commands/schema';
import { platformCheck, rollback } from './commands/platform';
import { schedule } from './commands/schedule';
import { abort, approve, monitor, reject, resume } from './commands/signals';
import { status } from './commands/status';
import { train } from './commands/train';
import { ui } from './commands/ui';

export const USAGE = `usage: mlops <command> [options]      (every command takes --json: the result as JSON on stdout)

training
  train --model <name> [--spec <file.json> | --spec-json '{…}'] [--months 2001-01:2001-02]
        [--sample-rows N] [--workflow-id <id>] [--no-wait]
      start continuousTraining (spec checked before it is sent; without a spec: the flights-delay
      preset on --months) and wait, with progress on stderr, for the registered version
  status --workflow-id <id>
      the status of any mlops workflow: training steps, promotion stage and figures, lifecycle
  resume --workflow-id <id> [--overrides <file.json | '{…}'>]
      resume a paused training run (overrides: dataset, hyperparameters, sampleRows, gates, resources)
  abort --workflow-id <id> [--reason <text>]
      stop a training run
  move-step --workflow-id <id> --step train --task-queue <queue>
      send a step waiting for a worker (e.g. train on a busy GPU class) to another task queue

closed loop (lifecycle workflow model/<name>)
  status --model <name>
      phase, production version, running child, pending triggers, budget, last decisions, and
      monitoring's latest report
  retrain --model <name> [--reason <text>] [--dedupe-key <key>] [--policy <file.json>]
          [--wait [--timeout 10m]]
      ask the lifecycle for a retrain (starts it if needed); --wait prints the training it started
  policy --model <name> --file <policy.json>
      replace the lifecycle's policy (cooldown, budget, training template, promotion, monitoring)
  monitor pause|resume --model <name> [--reason <text>]
      pause or resume monitoring checks (workflow monitoring/<name>)

schedules (Temporal Schedules that start scheduledRetrain, overlap SKIP)
  schedule create --model <name> (--cron '0 2 * * *' | --every 24h) [--schedule-id <id>]
                  [--reason <text>] [--policy <file.json>] [--paused]
  schedule list [--all]  |  schedule describe|trigger|delete --schedule-id <id>

promotion and registry
  approve --model <name> [--by <who>]           approve the promotion waiting for a human
  reject --model <name> [--reason <text>]       reject it (the promotion rolls back)
  rollback --model <name> [--reason <text>]
      return <name> to its previous production version: signals the running promotion if there
      is one, else runs an immediate rollback (workflow promotion-<name>)
  models [--model <name>]
      registered models and versions: status, created, AUC, log loss, aliases, rejection reasons
  models --model <name> --history [--alias production] [--at <ISO time>]
      every move of the model's aliases (version, from, since, until, how, which workflow, why);
      with --at, the versions that held them at that time
  ui [--port 8090] [--host 127.0.0.1]
      the read-only registry page: models, versions and gates, alias history, lineage, monitoring
      charts, pipeline runs and steps, links into the Temporal Web UI (MLOPS_TEMPORAL_UI_URL);
      with MLOPS_ADMIN_TOKEN set, open it once with ?token=<token>
  ui --export <dir>                             the same pages as static files (open <dir>/index.html)
  schema --model <name>                         the model's data schema versions (accepted, proposed)
  schema accept --model <name> [--version <n>]
      accept the schema of a span whose columns changed (its run stopped) as the next version;
      then: mlops resume --workflow-id <id>

platform
  platform-check [--gpu-class <class>] [--skip-gpu]
      run platformCheck on every queue and print which worker served each

Temporal is found like the temporal CLI finds it (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, temporal.toml);
the registry through DATABASE_URL or the dev stack's store.
exit codes: 0 done, 2 bad input or nothing to act on (one "error:" line), 3 the run stopped
without a result (paused for resume, retrain deferred or dropped), 1 anything else.
`;

const COMMANDS: Record<string, (argv: string[]) => Promise<void>> = {
  train,
  status,
  resume,
  abort,
  'move-step': moveStep,
  approve,
  reject,
  rollback,
  retrain,
  policy,
  schedule,
  models,
  ui,
  schema,
  monitor,
  'platform-check': platformCheck,
};

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(USAGE);
    return;
  }
  const run = COMMANDS[command];
  if (!run) throw new UserFacingError(`unknown command ${JSON.stringify(command)}; commands: ${Object.keys(COMMANDS).join(', ')} (mlops help)`);
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(USAGE);
    return;
  }
  await run(rest);
}

