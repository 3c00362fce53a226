import { ActivityFailure, allHandlersFinished, ApplicationFailure, condition, continueAsNew, defineQuery, setHandler, setWorkflowOptions, workflowInfo } from '@temporalio/workflow';
import { z } from 'zod';
import type { WatcherActivities, WatcherCursor } from '../activities/watcher';
import { STATUS_QUERY, lifecycleWorkflowId } from './contracts/names';
import { lazyActivities, taskQueues } from './contracts/task-queues';
import { parseInput } from './input';
import { lifecyclePolicy, modelName, pauseSignal, resumeMonitoringSignal } from './contracts/lifecycle';
import { signalOrStartLifecycle } from './lifecycle-signal';
import { versioning } from './contracts/versioning';

/**
 * The new-data trigger: one long-lived workflow per model (id `watch-data/<model>`) that lists
 * a dataset prefix every period and announces the data files it has not announced before to
 * the model's lifecycle workflow as `newData`. The cursor lives in workflow state, across
 * continue-as-new, and in the artifact store, so a watcher started again later goes on where
 * the previous one stopped instead of announcing the whole prefix again.
 */


const prefixUri = z
  .string()
  .max(1024)
  .refine((u) => /^(s3:\/\/[a-z0-9][a-z0-9.-]{1,62}\/.*|file:\/\/\/.+)$/.test(u), 'must be an s3://bucket/prefix/ or file:///absolute/folder/ URI')
  .refine((u) => !u.split(/[/\\]/).some((seg) => seg === '..' || /%2e%2e/i.test(seg)), 'must not contain ".." segments');

const cursorSchema = z
  .object({
    lastModified: z.string().max(40),
    uris: z.array(z.string().max(2048)).max(1000),
    afterUri: z.string().max(2048).optional(),
  })
  .strict();

const announcement = z.object({ at: z.string(), uris: z.number().int(), first: z.string(), last: z.string(), dedupeKey: z.string(), action: z.string() }).strict();
export type WatcherAnnouncement = z.infer<typeof announcement>;

export const datasetWatcherInput = z
  .object({
    model: modelName,
    prefix: prefixUri,
    periodSeconds: z.number().min(1).max(7 * 24 * 3600).default(300),
    /** Files per `newData` signal (the signal takes at most 100 URIs); a larger backlog goes out in several, oldest first. */
    batchSize: z.number().int().min(1).max(100).default(100),
    /** Files modified more recently than this wait for a later poll (a writer may not be done). */
    minAgeSeconds: z.number().min(0).max(24 * 3600).default(0),
    /** `resume`: go on from the cursor a previous watcher of this model and prefix saved (none: from the beginning); `beginning`: announce every file; `now`: announce only files that appear from now on. */
    start: z.enum(['resume', 'beginning', 'now']).default('resume'),
    /** Polls per run before continue-as-new, to keep the history small. */
    pollsPerRun: z.number().int().min(1).max(10_000).default(500),
    /** Used only if the watcher's signal starts the lifecycle workflow. */
    policy: lifecyclePolicy.optional(),
    /** Carried across continue-as-new. */
    state: z
      .object({
        cursor: cursorSchema.optional(),
        paused: z.boolean().default(false),
        polls: z.number().int().min(0).default(0),
        signals: z.number().int().min(0).default(0),
        files: z.number().int().min(0).default(0),
        generation: z.number().int().min(1).default(1),
        lastError: z.string().max(2000).optional(),
        recent: z.array(announcement).max(20).default([]),
      })
      .strict()
      .optional(),
  })
  .strict();
export type DatasetWatcherInput = z.input<typeof datasetWatcherInput>;
type WatcherState = NonNullable<z.output<typeof datasetWatcherInput>['state']>;

export interface DatasetWatcherStatus {
  model: string;
  prefix: string;
  lifecycleWorkflowId: string;
  paused: boolean;
  periodSeconds: number;
  cursor?: WatcherCursor;
  polls: number;
  /** `newData` signals sent and files announced, over all runs of this watcher. */
  signals: number;
  files: number;
  lastPollAt?: string;
  lastError?: string;
  /** The latest announcements, newest last. */
  recent: WatcherAnnouncement[];
  generation: number;
}

export const watcherStatusQuery = defineQuery<DatasetWatcherStatus>(STATUS_QUERY);

const list = lazyActivities<WatcherActivities>(() => ({
  taskQueue: taskQueues().control,
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '2 seconds', maximumAttempts: 4, nonRetryableErrorTypes: ['InvalidInput'] },
}));
const cursorStore = lazyActivities<WatcherActivities>(() => ({
  taskQueue: taskQueues().control,
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '2 seconds', maximumAttempts: 10 },
}));

/** FNV-1a, 32 bits, as hex: a short, deterministic name for a batch in the dedupe key. */
function fnv(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

function errorText(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return err.cause.message;
  return err instanceof Error ? err.message : String(err);
}

function isInvalidInput(err: unknown): boolean {
  return err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === 'InvalidInput';
}

// Worker Versioning: runs for months: it moves to the current build at its next task, so its changes are guarded with patched().
setWorkflowOptions(versioning('AUTO_UPGRADE'), datasetWatcher);

export async function datasetWatcher(raw: DatasetWatcherInput): Promise<never> {
  const { state: carried, ...input } = parseInput(datasetWatcherInput, raw, 'datasetWatcher');
  const s: WatcherState = carried ?? { paused: false, polls: 0, signals: 0, files: 0, generation: 1, recent: [] };
  let cursor: WatcherCursor | undefined = s.cursor;
  let lastPollAt: string | undefined;
  let wake = false;
  const ref = { model: input.model, prefix: input.prefix };

  setHandler(pauseSignal, () => {
    s.paused = true;
  });
  setHandler(resumeMonitoringSignal, () => {
    s.paused = false;
    wake = true;
  });
  setHandler(watcherStatusQuery, () => ({
    model: input.model,
    prefix: input.prefix,
    lifecycleWorkflowId: lifecycleWorkflowId(input.model),
    paused: s.paused,
    periodSeconds: input.periodSeconds,
    ...(cursor ? { cursor } : {}),
    polls: s.polls,
    signals: s.signals,
    files: s.files,
    ...(lastPollAt ? { lastPollAt } : {}),
    ...(s.lastError ? { lastError: s.lastError } : {}),
    recent: s.recent,
    generation: s.generation,
  }));

  // Only the first run of a watcher looks at what an earlier watcher left; later runs carry it.
  let establishNow = false;
  if (!carried) {
    if (input.start === 'resume') cursor = (await cursorStore.loadWatcherCursor(ref)) ?? undefined;
    establishNow = input.start === 'now';
  }

  for (let poll = 0; poll < input.pollsPerRun && !workflowInfo().continueAsNewSuggested; poll++) {
    await condition(() => !s.paused);
    let again = false;
    try {
      const found = await list.listNewDatasetObjects({ prefix: input.prefix, cursor, limit: input.batchSize, minAgeSeconds: input.minAgeSeconds });
      s.polls++;
      lastPollAt = new Date().toISOString();
      if (establishNow) {
        // `start: now`: what is there already counts as announced.
        establishNow = false;
        cursor = found.newest;
        if (cursor) await cursorStore.saveWatcherCursor({ ...ref, cursor });
      } else if (found.objects.length) {
        const uris = found.objects.map((o) => o.uri);
        const dedupeKey = `new-data:${input.model}:${fnv(input.prefix)}:${fnv(found.objects.map((o) => `${o.uri}@${o.lastModified}`).join('\n'))}`;
        const action = await signalOrStartLifecycle(input.model, { newData: { uris, dedupeKey, source: 'new-data' } }, input.policy);
        cursor = found.cursor;
        s.signals++;
        s.files += uris.length;
        s.recent = [...s.recent, { at: lastPollAt, uris: uris.length, first: uris[0]!, last: uris[uris.length - 1]!, dedupeKey, action }].slice(-20);
        // The lifecycle has the files; a lost save only means a restarted watcher repeats this batch, which the dedupe key drops.
        await cursorStore.saveWatcherCursor({ ...ref, cursor: cursor! });
        again = found.truncated;
      }
      s.lastError = undefined;
    } catch (err) {
      // A prefix that cannot work (outside MLOPS_DATA_ROOTS, no such bucket) fails the watcher
      // loudly; anything else (S3 or Temporal briefly away) is retried on the next poll.
      if (isInvalidInput(err)) throw ApplicationFailure.nonRetryable(`datasetWatcher ${input.model}: ${errorText(err)}`, 'InvalidInput');
      s.lastError = `${new Date().toISOString()}: ${errorText(err)}`.slice(0, 2000);
    }
    if (again) continue;
    wake = false;
    await condition(() => wake, input.periodSeconds * 1000);
  }

  await condition(allHandlersFinished);
  return continueAsNew<typeof datasetWatcher>({ ...input, state: { ...s, cursor, generation: s.generation + 1 } });
}
