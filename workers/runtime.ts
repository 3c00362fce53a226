import type { Kysely } from 'kysely';
import { createArtifactStore, type ArtifactStore } from '../infra/artifacts';
import { codeVersion } from '../infra/code-version';
import { loadConfig, type Config } from '../infra/config';
import { createDb, redactUrl } from '../infra/db/connection';
import { migrateToLatest } from '../infra/db/migrate';
import type { Database } from '../infra/db/schema';
import { UserFacingError, describeError } from '../infra/errors';
import type { Logger } from '../infra/log';
import { resolvePostgres, type PostgresHandle } from '../infra/postgres';

/** What every worker needs besides Temporal: configuration, the two stores, the code version. */
export interface WorkerRuntime {
  config: Config;
  pg: PostgresHandle;
  db: Kysely<Database>;
  artifacts: ArtifactStore;
  codeVersion: string;
  close(): Promise<void>;
}

export async function openRuntime(log: Logger, opts: { config?: Config; pg?: PostgresHandle } = {}): Promise<WorkerRuntime> {
  const config = opts.config ?? loadConfig();
  const pg = opts.pg ?? (await resolvePostgres(config, log));
  const db = createDb(pg.url, { max: pg.maxConnections, schema: config.databaseSchema });
  try {
    const started = performance.now();
    const outcome = await migrateToLatest(db, config.databaseSchema);
    log.info(
      `metadata store ${redactUrl(pg.url)}, schema ${config.databaseSchema}: ${outcome.applied.length ? `applied ${outcome.applied.join(', ')}` : 'schema up to date'} (${outcome.latest}) in ${Math.round(performance.now() - started)} ms`,
    );
    const artifacts = createArtifactStore(config);
    try {
      await artifacts.ensureReady();
    } catch (err) {
      throw err instanceof UserFacingError ? err : new UserFacingError(`ARTIFACT_ROOT ${config.artifactRoot.uri}: ${describeError(err)}`);
    }
    log.info(`artifact store: ${artifacts.root}`);
    return {
      config,
      pg,
      db,
      artifacts,
      codeVersion: codeVersion(config.codeVersion),
      close: async () => {
        await db.destroy();
        if (!opts.pg) await pg.close();
      },
    };
  } catch (err) {
    await db.destroy().catch(() => undefined);
    if (!opts.pg) await pg.close().catch(() => undefined);
    throw err;
  }
}
