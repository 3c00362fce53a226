import { runMain } from '../../infra/errors';
import { demoUsage, parseDemoOptions } from './options';
import { isAborted, runDemo } from './run';

/** `npm run demo`: the closed loop on the flights data, on a fresh local stack. Ctrl-C stops everything. */
runMain(async () => {
  const options = parseDemoOptions(process.argv.slice(2));
  if (options.help) {
    process.stdout.write(demoUsage());
    return;
  }
  const controller = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    if (controller.signal.aborted) {
      process.stderr.write(`${sig} again: exiting now\n`);
      process.exit(130);
    }
    process.stderr.write(`${sig}: stopping the demo and everything it started…\n`);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await runDemo(options, { signal: controller.signal });
  } catch (err) {
    if (isAborted(err)) process.exit(130);
    throw err;
  }
  // Stray handles (HTTP keep-alive, pg pools) must not keep a finished demo alive.
  process.exit(0);
});
