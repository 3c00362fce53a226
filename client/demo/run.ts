import fs from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { sql, type Kysely } from 'kysely';
import { loadConfig } from '../../infra/config';
import { createDb, redactUrl } from '../../infra/db/connection';
import type { Database } from '../../infra/db/schema';
import { UserFacingError } from '../../infra/errors';
import { createLogger } from '../../infra/log';
import { DATASET_WATCHER, TASK_QUEUES, lifecycleWorkflowId, monitoringWorkflowId, watcherWorkflowId } from '../../workflows/contracts/names';
import { monitoringThresholds } from '../../workflows/contracts/lifecycle';
import { signalLifecycle } from '../lifecycle';
import { collectDemoData } from './collect';
import { loadMonthSamples, monthLabel, monthsBetween, writeMonthFile, type MonthSample, type ReplayRow } from './data';
import type { DemoOptions } from './options';
import { DEMO_MODEL, demoPolicy } from './policy';
import { Replayer, type Labelled } from './replay';
import { renderReport, type DemoData } from './report';
import { exportRegistrySite } from '../web/site';
import { withEncryption } from '../../infra/codec';
import { startDemoStack, type DemoStack } from './stack';
import { Timeline, Watcher } from './timeline';

/**
 * `npm run demo`, end to end: start a fresh stack, start `model/flights-delay` with a retrain,
 * wait for v1 in production, replay February → June through the model server with labels
 * arriving late and each month's data arriving after it was served, print the timeline, write
 * the HTML report, stop everything. After the first retrain the demo only sends traffic, labels
 * and new data: every later retrain is the platform's own decision.
 */

export interface DemoResult {
  reportPath: string;
  data: DemoData;
  /** Process ids and ports the stack used (all stopped by the time this returns, unless --keep). */
  pids: number[];
  ports: number[];
}

class Aborted extends Error {}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new Aborted('interrupted'));
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, Math.max(0, ms));
    const onAbort = () => {
      clearTimeout(timer);
      reject(new Aborted('interrupted'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function chunks<T>(xs: T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

/** A deterministic shuffle: labels arrive in no particular order, so a partly delivered month is still a fair sample of it. */
function shuffled<T>(xs: T[], seed: number): T[] {
  const out = xs.slice();
  let state = (seed * 2654435761 + 1) >>> 0;
  const next = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

export function isAborted(err: unknown): boolean {
  return err instanceof Aborted;
}

export async function runDemo(o: DemoOptions, opts: { signal: AbortSignal; out?: NodeJS.WritableStream }): Promise<DemoResult> {
  const out = opts.out ?? process.stdout;
  const say = (line = '') => out.write(`${line}\n`);
  const log = createLogger('demo');
  const startedAt = Date.now();
  const deadline = startedAt + o.timeoutMinutes * 60_000;
  const signal = opts.signal;
  const months = monthsBetween(o.from, o.to);
  const stateDir = path.resolve(o.stateDir ?? path.join(loadConfig().stateDir, 'demo'));
  const policy = demoPolicy(o);
  const thresholds = monitoringThresholds.parse(policy.monitoring?.thresholds ?? {});
  const checkTime = (what: string) => {
    if (Date.now() > deadline) throw new UserFacingError(`demo: ${what} not done within --timeout-minutes ${o.timeoutMinutes}`);
  };

  say(`temporal-mlops demo: ${DEMO_MODEL}, trained on January 2001, then ${monthLabel(months[0]!)}–${monthLabel(months[months.length - 1]!)} 2001 replayed through the model server`);
  say(`  state (wiped first): ${stateDir}`);
  const samplesPromise = loadMonthSamples(months, o.rows, o.seed);
  samplesPromise.catch(() => undefined);
  let stack: DemoStack | undefined;
  let connection: Connection | undefined;
  let db: Kysely<Database> | undefined;
  let watcher: Watcher | undefined;
  try {
    stack = await startDemoStack({ stateDir, database: o.database, log, signal });
    // For whoever must check afterwards that nothing was left running (the integration test, a person).
    await fs.writeFile(path.join(stack.stateDir, 'stack.json'), JSON.stringify({ pids: stack.pids(), ports: stack.ports(), uiUrl: stack.temporal.uiUrl, modelServerUrl: stack.modelServerUrl }, null, 2));
    say('');
    say('stack is up');
    say(`  Temporal Web UI  ${stack.temporal.uiUrl}   ← watch model/${DEMO_MODEL}, monitoring/${DEMO_MODEL}, the training and promotion runs`);
    say(`  Temporal gRPC    ${stack.temporal.address}`);
    say(`  PostgreSQL       ${redactUrl(stack.databaseUrl)}   (${stack.databaseSource}, fresh)`);
    say(`  Model server     ${stack.modelServerUrl}   (admin token generated for this run)`);
    say(`  Artifacts        ${stack.artifactRoot}`);
    say(`  New data lands   ${stack.dataDir}`);
    say(`  Logs             ${path.dirname(stack.logs.workers)}/{temporal,workers,model-server}.log`);
    const samples = await samplesPromise;
    say('');
    say(`Traffic is SAMPLED: ${o.rows} rows per month, drawn deterministically (hash of the row number, seed ${o.seed}) from each month's ~500k flights,`);
    say(`sent in time order in batches of ${o.batch} over ${o.monthSeconds}s per month; each month's labels (delay > 15 min) arrive ${Math.round(o.labelDelay * 100)}% into the next month.`);
    for (const s of samples) say(`  ${monthLabel(s.month)} 2001: ${s.rows.length} of ${s.fullRows.toLocaleString('en-US')} rows; delayed > 15 min: ${((s.rows.filter((r) => r.label).length / s.rows.length) * 100).toFixed(1)}% in the sample, ${(s.fullPositiveRate * 100).toFixed(1)}% in the whole month`);

    connection = await Connection.connect({ address: stack.temporal.address });
    // The stack's workers inherit MLOPS_CODEC_KEYS from this environment; the demo's client matches them.
    const keys = loadConfig().codecKeys;
    const client = new Client({ connection, namespace: stack.temporal.namespace, ...(keys ? { dataConverter: withEncryption(undefined, keys) } : {}) });
    db = createDb(stack.databaseUrl, { max: stack.databaseSource === 'pglite' ? 1 : 2, applicationName: 'mlops-demo', schema: stack.databaseSchema });
    const timeline = new Timeline(startedAt, out);
    watcher = new Watcher({ client, db, model: DEMO_MODEL, timeline, minRows: thresholds.minRows });
    const replayer = new Replayer({ serverUrl: stack.modelServerUrl, adminToken: stack.adminToken, model: DEMO_MODEL });

    say('');
    say('timeline (mm:ss since start · month being replayed · event · version · detail)');
    await signalLifecycle(client, DEMO_MODEL, 'retrain', { reason: 'initial model', source: 'demo' }, policy);
    timeline.add({ kind: 'demo', source: 'demo', detail: `signal-with-start ${lifecycleWorkflowId(DEMO_MODEL)}: retrain "initial model" (the only retrain the demo asks for)` });
    watcher.start();
    if (o.newData === 'watcher') {
      // The platform's own new-data trigger: it lists the folder and signals newData for each new file.
      await client.workflow.start(DATASET_WATCHER, {
        workflowId: watcherWorkflowId(DEMO_MODEL),
        taskQueue: TASK_QUEUES.control,
        args: [{ model: DEMO_MODEL, prefix: `${pathToFileURL(stack.dataDir).href}/`, periodSeconds: 2, start: 'beginning' }],
      });
      timeline.add({ kind: 'demo', source: 'demo', detail: `started ${watcherWorkflowId(DEMO_MODEL)} on ${pathToFileURL(stack.dataDir).href}/ (every 2s)` });
    }

    // v1: the lifecycle trains on January and promotes it; nothing to replay against before that.
    while (watcher.latest?.production === undefined || watcher.latest.production === null) {
      checkTime(`v1 in production (last: ${watcher.lastError ?? watcher.latest?.phase ?? 'no status yet'})`);
      await sleep(1000, signal);
    }

    const windows = new Map<string, { start: number; end: number }>();
    const labelsAt = new Map<string, number>();
    const labelsFrom = new Map<string, number>();
    let pending: { month: string; labels: Labelled[] } | null = null;
    let delivering: Promise<void> = Promise.resolve();
    // Labels go out in the background: the server attaches them row by row (seconds for a
    // month), and traffic must not pause meanwhile.
    const deliver = () => {
      if (!pending) return;
      const p = pending;
      pending = null;
      delivering = delivering.then(async () => {
        labelsFrom.set(p.month, Date.now());
        const r = await replayer.feedback(shuffled(p.labels, o.seed));
        labelsAt.set(p.month, Date.now());
        timeline.add({ kind: 'labels', source: 'demo', detail: `${monthLabel(p.month)}'s ground truth arrived: ${r.attached} labels (delay > 15 min) via /feedback${r.unknown ? `, ${r.unknown} unknown ids` : ''}` });
      });
    };
    const prefixOf = (m: string) => monthLabel(m).toLowerCase();

    for (const s of samples) {
      timeline.month = s.month;
      const start = Date.now();
      timeline.add({ kind: 'month', source: 'demo', detail: `replaying ${monthLabel(s.month)} 2001: ${s.rows.length} sampled rows, ${Math.ceil(s.rows.length / o.batch)} requests over ${o.monthSeconds}s` });
      const batches = chunks(s.rows, o.batch);
      const interval = (o.monthSeconds * 1000) / batches.length;
      const labelsDue = start + o.labelDelay * o.monthSeconds * 1000;
      const collected: Labelled[] = [];
      for (let k = 0; k < batches.length; k++) {
        await sleep(start + k * interval - Date.now(), signal);
        checkTime(`replay of ${s.month}`);
        if (pending && Date.now() >= labelsDue) deliver();
        collected.push(...(await replayer.infer(s.month, `${prefixOf(s.month)}-${String(k).padStart(5, '0')}`, batches[k]!)));
      }
      deliver();
      await sleep(start + o.monthSeconds * 1000 - Date.now(), signal);
      windows.set(s.month, { start, end: Date.now() });
      // The month's data lands where training can read it, and the lifecycle hears of it.
      const file = await writeMonthFile(s.month, stack.dataDir, path.join(stack.stateDir, 'scratch'));
      if (o.newData === 'signal') await signalLifecycle(client, DEMO_MODEL, 'newData', { uris: [pathToFileURL(file).href], dedupeKey: `flights-${s.month}` });
      timeline.add({
        kind: 'new data',
        source: 'demo',
        detail: `${monthLabel(s.month)}'s ${s.fullRows.toLocaleString('en-US')} flights landed as ${path.basename(file)}; ${o.newData === 'signal' ? 'newData signalled' : `${watcherWorkflowId(DEMO_MODEL)} will find it`} (no retrain by itself: retrainOnNewData is false)`,
      });
      if (replayer.errors) timeline.add({ kind: 'errors', detail: `${replayer.errors} inference requests failed so far; last: ${replayer.lastError}` });
      pending = { month: s.month, labels: collected };
    }

    // Drain: the last month's labels still have to arrive and may start a retrain, whose canary
    // needs traffic; keep serving more rows of the last month until the lifecycle is idle.
    const last = samples[samples.length - 1]!;
    const drainStart = Date.now();
    const lastWindow = windows.get(last.month)!;
    const interval = (o.monthSeconds * 1000) / Math.max(1, Math.ceil(last.rows.length / o.batch));
    const labelsDue = drainStart + o.labelDelay * o.monthSeconds * 1000;
    // Bounded: a lifecycle that keeps retraining (see the notes on load-test rows) must not hold the demo forever.
    const drainCap = Math.min(deadline - 60_000, drainStart + Math.max(120_000, 3 * o.monthSeconds * 1000));
    timeline.add({ kind: 'drain', source: 'demo', detail: `more ${monthLabel(last.month)} traffic until its labels are judged and the lifecycle is idle` });
    const extra: ReplayRow[] = last.extra.length ? last.extra : last.rows;
    let k = 0;
    let drainNote: string | undefined;
    for (;;) {
      await sleep(drainStart + k * interval - Date.now(), signal);
      if (pending && Date.now() >= labelsDue) deliver();
      const pass = Math.floor((k * o.batch) / extra.length);
      const from = (k * o.batch) % extra.length;
      await replayer.infer(last.month, `${prefixOf(last.month)}-x${pass}-${String(k).padStart(5, '0')}`, extra.slice(from, from + o.batch));
      k++;
      const lastLabels = labelsAt.get(last.month);
      if (lastLabels !== undefined) {
        // Labels attach one by one while monitoring checks, so one month's labels can be judged
        // over several reports; each report counts only the labels that arrived since the last.
        const since = labelsFrom.get(last.month) ?? lastLabels;
        const judgedLabels = watcher.reports.filter((r) => r.at > since && r.level !== 'insufficient-data').reduce((a, r) => a + r.labeledRows, 0);
        const labelsJudged = judgedLabels >= 0.9 * last.rows.length || watcher.reports.filter((r) => r.at > lastLabels).length >= 3;
        const st = watcher.latest;
        const idle = st !== undefined && st.running === undefined && st.pending.length === 0;
        if (labelsJudged && idle && Date.now() - lastLabels > 2 * o.periodSeconds * 1000) break;
      }
      if (Date.now() > drainCap) {
        drainNote = `stopped waiting after ${Math.round((Date.now() - drainStart) / 1000)}s: lifecycle ${watcher.latest?.phase ?? 'unknown'}${watcher.latest?.running ? ` (${watcher.latest.running.kind} ${watcher.latest.running.workflowId})` : ''}`;
        timeline.add({ kind: 'drain', detail: drainNote });
        break;
      }
    }
    lastWindow.end = Date.now();
    await delivering;
    await watcher.stop();
    timeline.month = null;
    timeline.add({ kind: 'done', source: 'demo', detail: `replay finished; ${replayer.served.reduce((a, b) => a + (b.ok ? b.rows : 0), 0)} rows answered, ${replayer.errors} failed requests` });

    const notes = [
      `Traffic is sampled: ${o.rows} rows per month (deterministic, seed ${o.seed}) of about 500,000; labels are the real delays (> 15 min), sent late through /feedback.`,
      `Thresholds: PSI warn ${thresholds.psiWarn} / act ${thresholds.psiAct}, AUC drop ${thresholds.maxAucDrop}, log-loss rise ${thresholds.maxLogLossIncrease}, calibration gap ${thresholds.maxCalibrationGap} (default 0.05), windows of at least ${thresholds.minRows} rows and ${thresholds.minLabeledRows} labelled rows.`,
      `Monitoring ${monitoringWorkflowId(DEMO_MODEL)} checks every ${o.periodSeconds}s; one month of traffic takes ${o.monthSeconds}s. A month without drift figures had no window of ${thresholds.minRows}+ rows ending inside it (a verdict on labels alone also closes the traffic window).`,
      'Training gates: a candidate may score up to 0.02 AUC below the champion (default 0.005): these retrains are for calibration, which AUC does not measure.',
      ...(drainNote ? [`Drain: ${drainNote}.`] : []),
      ...(replayer.errors ? [`${replayer.errors} inference requests failed; last error: ${replayer.lastError}`] : []),
    ];
    const pinned = await pinnedRows(db);
    if (pinned > 0) notes.push(`${pinned} prediction-log rows came from the promotions' own contract and load tests (role "pinned", synthetic inputs for the load test); monitoring windows that include them see unseen categories and feature drift that no user sent.`);
    const data = await collectDemoData({
      db,
      model: DEMO_MODEL,
      startedAt,
      uiUrl: stack.temporal.uiUrl,
      options: { ...o },
      thresholds,
      samples,
      windows,
      served: replayer.served,
      reports: watcher.reports,
      events: timeline.events,
      productionSince: watcher.productionSince,
      minRows: thresholds.minRows,
      notes,
    });
    // The registry pages as static files beside the report: the same views `mlops ui` serves.
    const registryDir = path.join(stack.stateDir, 'registry');
    const pages = await exportRegistrySite(db, registryDir, { temporalUi: stack.temporal.uiUrl, namespace: stack.temporal.namespace });
    const reportPath = path.join(stack.stateDir, 'report.html');
    await fs.writeFile(reportPath, renderReport(data, { registryHref: 'registry/index.html' }));
    printSummary(say, data, samples);
    say(`report: ${reportPath}`);
    say(`registry pages: ${path.join(registryDir, 'index.html')} (${pages.length} pages)`);
    const result: DemoResult = { reportPath, data, pids: stack.pids(), ports: stack.ports() };
    if (o.keep) {
      say(`--keep: the stack stays up (Web UI ${stack.temporal.uiUrl}, model server ${stack.modelServerUrl}); Ctrl-C stops it.`);
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    }
    return result;
  } finally {
    await watcher?.stop().catch(() => undefined);
    await db?.destroy().catch(() => undefined);
    await connection?.close().catch(() => undefined);
    if (stack) {
      log.info('stopping workers, model server and Temporal…');
      await stack.stop();
      log.info('stopped');
    }
  }
}

async function pinnedRows(db: Kysely<Database>): Promise<number> {
  const r = await sql<{ n: string }>`select count(*) as n from prediction_log where outputs->>'role' = 'pinned'`.execute(db);
  return Number(r.rows[0]?.n ?? 0);
}

function printSummary(say: (l?: string) => void, data: DemoData, samples: MonthSample[]): void {
  const f = (x: number | null | undefined, d = 3) => (x === null || x === undefined ? '  –  ' : x.toFixed(d));
  say('');
  say('month  rows  labelled  AUC    log loss  delay rate  mean pred  max PSI  pred PSI  served by');
  for (const m of data.months) {
    const s = samples.find((x) => x.month === m.month)!;
    say(
      `${m.label.padEnd(5)}  ${String(s.rows.length).padEnd(4)}  ${String(m.online?.labeledRows ?? 0).padEnd(8)}  ${f(m.online?.auc)}  ${f(m.online?.logLoss)}     ${f(m.online?.positiveRate)}       ${f(m.online?.meanPrediction)}      ${f(m.drift.maxFeaturePsi)}    ${f(m.drift.predictionPsi)}     ${Object.entries(m.versions)
        .map(([v, n]) => `v${v}:${n}`)
        .join(' ')}`,
    );
  }
  say('');
  for (const v of data.versions) say(`v${v.version}  ${v.status.padEnd(10)}  offline AUC ${f(v.auc)}  trained on ${v.trainedOn}${v.promotedAt ? '  → production' : ''}`);
  const bySource = new Map<string, number>();
  for (const r of data.retrains) bySource.set(r.source, (bySource.get(r.source) ?? 0) + 1);
  say(`retrains asked: ${[...bySource].map(([s, n]) => `${n} by ${s}`).join(', ') || 'none'}`);
}
