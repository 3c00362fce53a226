import { runMain } from '../infra/errors';
import { shutdownTracing } from '../infra/tracing';
import { main } from './main';

/** `mlops` (bin/mlops, `npm run mlops --`): see client/main.ts for the commands. Spans still buffered go out before it exits, failed or not. */
runMain(() => main(process.argv.slice(2)).finally(() => shutdownTracing()));
