import { existsSync } from 'node:fs';
import path from 'node:path';
import { UserFacingError } from './errors';
import { PROJECT_ROOT } from './paths';

/**
 * The compiled JavaScript of one of our entry points (`workers/model-server`, `workers/dev`, …),
 * for starting it in a process of its own with plain `node`. From the compiled package that is
 * the file beside us; from the TypeScript sources (jest, the bench) it is the build in dist/,
 * which must exist (`npm run build`): nothing at run time goes through a TypeScript loader.
 */
export function compiledEntry(entry: string): string {
  const distRoot = __filename.endsWith('.js') ? path.resolve(__dirname, '..') : path.join(PROJECT_ROOT, 'dist');
  const file = path.join(distRoot, `${entry.replace(/\.(ts|js)$/, '')}.js`);
  if (!existsSync(file)) throw new UserFacingError(`${file} is missing: build the package first (npm run build)`);
  return file;
}
