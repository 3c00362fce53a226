import type { Kysely } from 'kysely';
import type { Database } from '../../infra/db/schema';
import { addServingErrors, pruneModelServers, readServingState, servingGenerations, stopModelServer, upsertModelServer, type ServingModelState } from '../../infra/db/repositories';
import type { Logger } from '../../infra/log';
import { HttpError } from '../../infra/http';
import type { ModelStore } from './models';

/**
 * How a model server follows the serving state in PostgreSQL (the one source of truth; see the
 * serving-state migration): every `pollMs` it reads each model's generation, and for a model
 * whose generation is newer than the one it serves it reads that model's traffic and version set
 * (one repeatable-read snapshot), loads every version the set names, then switches the traffic
 * atomically and unloads what the set no longer names. Until every version is loaded the old
 * traffic keeps serving and the generation is not applied. Every `heartbeatMs`, and at once
 * after a change, it writes its row in `model_servers`: the generation it serves per model,
 * whether it is ready, what it is missing and why. Failed requests are counted per version,
 * role and second and added to `serving_errors` with each heartbeat.
 */

export interface ServingSyncOptions {
  serverId: string;
  endpoint: string;
  pollMs: number;
  heartbeatMs: number;
}

interface LoadFailure {
  model: string;
  version: number;
  message: string;
  permanent: boolean;
  attempts: number;
  retryAt: number;
  error: unknown;
}

/** A load that cannot succeed by retrying: a rejected version, one without ONNX, bytes that do not match the registry. */
function isPermanent(err: unknown): boolean {
  if (err instanceof HttpError) return err.status >= 400 && err.status < 500;
  return err instanceof Error && /refusing to load it/.test(err.message);
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

export class ServingSync {
  /** The generation served per model id. */
  readonly applied = new Map<string, number>();
  /** The versions each model's servers must hold, as last read (model id → state). */
  readonly required = new Map<string, ServingModelState>();
  private readonly failures = new Map<string, LoadFailure>();
  private readonly chains = new Map<string, Promise<void>>();
  private readonly errorCounts = new Map<string, { modelVersionId: string; role: string; bucket: Date; count: number }>();
  private timer: NodeJS.Timeout | undefined;
  private lastBeat = 0;
  private synced = false;
  private closing = false;
  private lastWarning = 0;
  private ticking: Promise<void> = Promise.resolve();
  /** Error counts that could not be written (the database was down) past the buffer limit. */
  errorsDropped = 0;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly store: ModelStore,
    private readonly log: Logger,
    readonly opts: ServingSyncOptions,
  ) {}

  /** Registers the server (not ready yet): throws when the database cannot be reached. */
  async register(): Promise<void> {
    await pruneModelServers(this.db, 24 * 3600 * 1000).catch(() => undefined);
    await this.beat();
  }

  /** Applies the current state once (loading what it names), then follows changes; never rejects. */
  async run(): Promise<void> {
    try {
      await this.tick();
    } finally {
      this.schedule();
    }
  }

  private schedule(): void {
    if (this.closing) return;
    this.timer = setTimeout(() => {
      this.ticking = this.tick().finally(() => this.schedule());
    }, this.opts.pollMs);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    try {
      const changed = await this.syncOnce();
      const first = !this.synced;
      this.synced = true;
      if (first || changed || this.errorCounts.size || Date.now() - this.lastBeat >= this.opts.heartbeatMs) await this.beat();
    } catch (err) {
      if (Date.now() - this.lastWarning > 10_000) {
        this.lastWarning = Date.now();
        this.log.warn(`serving state: ${message(err)} (serving the last state read; retrying every ${this.opts.pollMs} ms)`);
      }
    }
  }

  /** Applies every model whose generation moved (or whose last apply failed); true when something was read. */
  async syncOnce(): Promise<boolean> {
    const generations = await servingGenerations(this.db);
    const stale = [...generations].filter(([id, g]) => (this.applied.get(id) ?? -1) < g).map(([id]) => id);
    if (!stale.length) return false;
    const states = await this.db
      .transaction()
      .setIsolationLevel('repeatable read')
      .execute((trx) => readServingState(trx, stale));
    await Promise.all(states.map((s) => this.apply(s)));
    return true;
  }

  /** Reads one model's state and applies it now (the admin API, after its own write). */
  async syncModel(modelId: string): Promise<void> {
    const states = await this.db
      .transaction()
      .setIsolationLevel('repeatable read')
      .execute((trx) => readServingState(trx, [modelId]));
    for (const s of states) await this.apply(s, true);
    await this.beat();
  }

  /** One model's applies run one after another; an older generation never replaces a newer one. */
  private apply(s: ServingModelState, rethrow = false): Promise<void> {
    const prev = this.chains.get(s.modelId) ?? Promise.resolve();
    const next = prev.then(() => this.applyNow(s, rethrow));
    this.chains.set(
      s.modelId,
      next.catch(() => undefined),
    );
    return next;
  }

  private async applyNow(s: ServingModelState, rethrow: boolean): Promise<void> {
    if ((this.applied.get(s.modelId) ?? -1) >= s.generation) return;
    const current = this.required.get(s.modelId);
    if (!current || current.generation <= s.generation) this.required.set(s.modelId, s);
    const results = await Promise.allSettled(s.versions.map((v) => this.loadWithBackoff(s.name, v)));
    const failed = results.map((r, i) => ({ r, v: s.versions[i]! })).filter((x) => x.r.status === 'rejected');
    if (failed.length) {
      if (rethrow) throw (failed[0]!.r as PromiseRejectedResult).reason;
      return;
    }
    const traffic = { stable: s.stable, canary: s.canary, canaryWeight: s.canaryWeight, shadow: s.shadow };
    this.store.applyState(s.name, traffic, s.generation, s.versions);
    this.applied.set(s.modelId, s.generation);
    this.log.info(`model ${s.name}: generation ${s.generation}: traffic ${JSON.stringify(traffic)}, holding v${s.versions.join(', v')}`);
  }

  private async loadWithBackoff(name: string, version: number): Promise<void> {
    const key = `${name}@${version}`;
    if (this.store.models.get(name)?.versions.has(version)) {
      this.failures.delete(key);
      return;
    }
    const f = this.failures.get(key);
    if (f && Date.now() < f.retryAt) throw f.error;
    try {
      await this.store.load(name, version);
      this.failures.delete(key);
    } catch (err) {
      const attempts = (f?.attempts ?? 0) + 1;
      this.failures.set(key, { model: name, version, message: message(err), permanent: isPermanent(err), attempts, retryAt: Date.now() + Math.min(30_000, 250 * 2 ** attempts), error: err });
      if (attempts === 1 || attempts % 10 === 0) this.log.error(`could not load ${name} v${version} (attempt ${attempts}): ${message(err)}`);
      throw err;
    }
  }

  /** Versions this server must hold but does not (yet), as "model vN". */
  missing(modelName?: string): string[] {
    const out: string[] = [];
    for (const s of this.required.values()) {
      if (modelName !== undefined && s.name !== modelName) continue;
      const loaded = this.store.models.get(s.name)?.versions;
      for (const v of s.versions) if (!loaded?.has(v)) out.push(`${s.name} v${v}`);
    }
    return out;
  }

  /** Whether `name` is served from the database's state here (a model the store holds only in memory is not). */
  follows(name: string): boolean {
    return [...this.required.values()].some((s) => s.name === name);
  }

  requiredVersions(name: string): number[] {
    return [...this.required.values()].find((s) => s.name === name)?.versions ?? [];
  }

  get ready(): boolean {
    return this.synced && !this.closing && this.missing().length === 0;
  }

  get loadErrors(): Array<{ model: string; version: number; message: string; permanent: boolean }> {
    return [...this.failures.values()].map((f) => ({ model: f.model, version: f.version, message: f.message, permanent: f.permanent }));
  }

  /** Counts a failed request (flushed to serving_errors with the next heartbeat). */
  recordError(modelVersionId: string, role: string): void {
    const bucket = new Date(Math.floor(Date.now() / 1000) * 1000);
    const key = `${modelVersionId}\u0000${role}\u0000${bucket.getTime()}`;
    const e = this.errorCounts.get(key);
    if (e) e.count++;
    else if (this.errorCounts.size < 100_000) this.errorCounts.set(key, { modelVersionId, role, bucket, count: 1 });
    else this.errorsDropped++;
  }

  private async flushErrors(): Promise<void> {
    if (!this.errorCounts.size) return;
    const rows = [...this.errorCounts.entries()];
    this.errorCounts.clear();
    try {
      await addServingErrors(
        this.db,
        rows.map(([, r]) => ({ serverId: this.opts.serverId, ...r })),
      );
    } catch (err) {
      // Put them back (merged with any counted meanwhile) for the next heartbeat.
      for (const [k, r] of rows) {
        const e = this.errorCounts.get(k);
        if (e) e.count += r.count;
        else this.errorCounts.set(k, r);
      }
      throw err;
    }
  }

  /** Writes this server's row: heartbeat, applied generations, readiness. */
  async beat(): Promise<void> {
    this.lastBeat = Date.now();
    await this.flushErrors();
    await upsertModelServer(this.db, {
      id: this.opts.serverId,
      endpoint: this.opts.endpoint,
      pid: process.pid,
      heartbeatMs: this.opts.heartbeatMs,
      ready: this.ready,
      applied: Object.fromEntries(this.applied),
      missing: this.missing(),
      loadErrors: this.loadErrors,
    });
  }

  /** Stops following; flushes error counts and marks the server stopped so nobody waits for it. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.timer) clearTimeout(this.timer);
    await this.ticking.catch(() => undefined);
    try {
      await this.flushErrors();
    } catch (err) {
      this.log.warn(`serving errors: ${message(err)}; ${[...this.errorCounts.values()].reduce((n, e) => n + e.count, 0)} error counts not written`);
    }
    await stopModelServer(this.db, this.opts.serverId).catch((err: unknown) => this.log.warn(`model_servers: ${message(err)}`));
  }
}
