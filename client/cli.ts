import { runMain } from '../infra/errors';
import { main } from './main';

/** `mlops` (bin/mlops, `npm run mlops --`): see client/main.ts for the commands. */
runMain(() => main(process.argv.slice(2)));
