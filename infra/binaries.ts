import { execFile, spawn } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Config } from './config';
import { UserFacingError } from './errors';
import type { Logger } from './log';

export interface BinarySpec {
  /** File name of the executable. */
  name: string;
  /** Env var that names an explicit path. */
  envVar: 'TEMPORAL_CLI_PATH' | 'MINIO_SERVER_PATH';
  goPackage: string;
  /** Pinned version given to `go install`. */
  version: string;
  /** What a person should run if nothing here can provide it. */
  installHint: string;
}

export const TEMPORAL_CLI: BinarySpec = {
  name: 'temporal',
  envVar: 'TEMPORAL_CLI_PATH',
  goPackage: 'github.com/temporalio/cli/cmd/temporal',
  // Later tags carry a `replace` directive in go.mod, which `go install pkg@version` rejects.
  version: 'v1.5.1',
  installHint: 'install Go and run `npm run setup`, or `go install github.com/temporalio/cli/cmd/temporal@v1.5.1`, or set TEMPORAL_CLI_PATH',
};

export const MINIO_SERVER: BinarySpec = {
  name: 'minio',
  envVar: 'MINIO_SERVER_PATH',
  goPackage: 'github.com/minio/minio',
  // MinIO has no semver tags; this pins the commit of 2026-02-12 on its default branch.
  version: 'v0.0.0-20260212201848-7aac2a2c5b7c',
  installHint: 'install Go and run `npm run setup`, or `go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c`, or set MINIO_SERVER_PATH',
};

export interface ResolvedBinary {
  path: string;
  source: 'env' | 'PATH' | 'project bin' | 'cache' | 'built';
  buildMs?: number;
}

async function isExecutable(file: string): Promise<boolean> {
  try {
    const st = await fs.stat(file);
    if (!st.isFile()) return false;
    await fs.access(file, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

async function onPath(name: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (await isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** Versioned file name in the machine-wide cache, so a pin change triggers one rebuild. */
function cachedName(spec: BinarySpec): string {
  return `${spec.name}@${spec.version}`;
}

/** The Go toolchain: on PATH, else where the official tarball installs it. */
export async function findGo(): Promise<string | undefined> {
  return (await onPath('go')) ?? ((await isExecutable('/usr/local/go/bin/go')) ? '/usr/local/go/bin/go' : undefined);
}

async function linkIntoProject(config: Config, spec: BinarySpec, target: string): Promise<string> {
  await fs.mkdir(config.projectBinDir, { recursive: true });
  const link = path.join(config.projectBinDir, spec.name);
  await fs.rm(link, { force: true });
  await fs.symlink(target, link);
  return link;
}

/**
 * Finds a tool: the env var, then PATH, then the project's .bin/, then the machine-wide cache;
 * else builds it with `go install` into the cache and links it into .bin/. Says what it did.
 */
export async function resolveBinary(spec: BinarySpec, config: Config, log: Logger, opts: { build?: boolean } = {}): Promise<ResolvedBinary> {
  const explicit = spec.envVar === 'TEMPORAL_CLI_PATH' ? config.temporalCliPath : config.minioServerPath;
  if (explicit) {
    if (!(await isExecutable(explicit))) throw new UserFacingError(`${spec.envVar}=${explicit} is not an executable file`);
    log.info(`${spec.name}: ${explicit} (from ${spec.envVar})`);
    return { path: explicit, source: 'env' };
  }
  const fromPath = await onPath(spec.name);
  if (fromPath) {
    log.info(`${spec.name}: ${fromPath} (on PATH)`);
    return { path: fromPath, source: 'PATH' };
  }
  const projectBin = path.join(config.projectBinDir, spec.name);
  if (await isExecutable(projectBin)) {
    log.info(`${spec.name}: ${projectBin} (project bin folder)`);
    return { path: projectBin, source: 'project bin' };
  }
  const cached = path.join(config.toolCacheDir, cachedName(spec));
  if (await isExecutable(cached)) {
    const link = await linkIntoProject(config, spec, cached);
    log.info(`${spec.name}: ${cached} (cached build, linked as ${link})`);
    return { path: link, source: 'cache' };
  }
  if (opts.build === false) throw new UserFacingError(`${spec.name} not found; ${spec.installHint}`);
  const go = await findGo();
  if (!go) throw new UserFacingError(`${spec.name} not found (looked at ${spec.envVar}, PATH, ${projectBin}, ${cached}) and Go is not installed to build it; ${spec.installHint}`);
  const buildMs = await goInstall(go, spec, config, log);
  const link = await linkIntoProject(config, spec, cached);
  return { path: link, source: 'built', buildMs };
}

async function goInstall(go: string, spec: BinarySpec, config: Config, log: Logger): Promise<number> {
  const gobin = path.join(config.toolCacheDir, `.build-${spec.name}-${process.pid}`);
  await fs.mkdir(gobin, { recursive: true });
  const started = performance.now();
  log.info(`${spec.name}: building ${spec.goPackage}@${spec.version} with ${go} (first time only; takes a few minutes)…`);
  const tick = setInterval(() => log.info(`${spec.name}: still building (${Math.round((performance.now() - started) / 1000)} s)…`), 30_000);
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(go, ['install', `${spec.goPackage}@${spec.version}`], {
        env: { ...process.env, GOBIN: gobin },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-4000);
      });
      child.on('error', reject);
      child.on('exit', (code) =>
        code === 0 ? resolve() : reject(new UserFacingError(`building ${spec.name} failed (go install exit ${code}): ${stderr.trim().split('\n').slice(-3).join(' | ')}`)),
      );
    });
    // Rename into place so a concurrent reader never sees a half-written binary.
    await fs.rename(path.join(gobin, spec.name), path.join(config.toolCacheDir, cachedName(spec)));
  } finally {
    clearInterval(tick);
    await fs.rm(gobin, { recursive: true, force: true });
  }
  const ms = Math.round(performance.now() - started);
  log.info(`${spec.name}: built in ${(ms / 1000).toFixed(1)} s`);
  return ms;
}

export function binaryVersion(file: string, args: string[] = ['--version']): Promise<string> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 10_000 }, (err, stdout) => resolve(err ? 'unknown' : stdout.trim().split('\n')[0] ?? 'unknown'));
  });
}
