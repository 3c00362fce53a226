import { MINIO_SERVER, TEMPORAL_CLI, binaryVersion, resolveBinary } from './binaries';
import { loadConfig } from './config';
import { runMain } from './errors';
import { createLogger } from './log';
import { PYTHON_PACKAGES, ensurePythonPackages } from './python';
import { ALERTMANAGER, CHROMIUM, JQ, PROMETHEUS, PROMTOOL, ensureDebianTool } from './debian-tools';

/**
 * `npm run setup`: finds or builds the `temporal` and `minio` binaries (cached machine-wide, so a
 * fresh clone on the same machine reuses them), checks — or installs with apt-get — the system
 * Python packages of the example trainer and the reference checks and Debian's promtool, and
 * says what it found.
 */
runMain(async () => {
  const log = createLogger('setup');
  const config = loadConfig();
  for (const spec of [TEMPORAL_CLI, MINIO_SERVER]) {
    const resolved = await resolveBinary(spec, config, log);
    const version = await binaryVersion(resolved.path);
    process.stdout.write(
      `${spec.name.padEnd(9)} ${resolved.path}  [${resolved.buildMs !== undefined ? `built in ${(resolved.buildMs / 1000).toFixed(1)} s` : resolved.source}]  ${version}\n`,
    );
  }
  process.stdout.write(`python    ${ensurePythonPackages(log)}  [with ${PYTHON_PACKAGES.modules.join(', ')}]\n`);
  for (const tool of [PROMTOOL, PROMETHEUS, ALERTMANAGER, CHROMIUM, JQ]) process.stdout.write(`${tool.command.padEnd(9)} ${ensureDebianTool(tool, log)}\n`);
});
