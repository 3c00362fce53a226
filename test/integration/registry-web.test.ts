import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment, type TestWorkflowEnvironment } from '@temporalio/testing';
import type { Client as PgClient } from 'pg';
import { literal, withDuckDb } from '../../activities/data/duck';
import { flightsParquetPath } from '../../activities/data/snapshot';
import { createMonitoringActivities } from '../../activities/monitoring';
import { exportRegistrySite, startRegistryWeb, type RegistryWeb } from '../../client/web/site';
import { getModelByName } from '../../infra/db/repositories';
import { createLogger } from '../../infra/log';
import { PROJECT_ROOT } from '../../infra/paths';
import type { RunningModelServer } from '../../workers/serving/server';
import type { WorkerRuntime } from '../../workers/runtime';
import type { TrainingResult } from '../../workflows/continuous-training';
import { monitoringThresholds } from '../../workflows/contracts/lifecycle';
import { TASK_QUEUES } from '../../workflows/contracts/names';
import { promotionWorkflowId, type PromotionInput, type PromotionStatus } from '../../workflows/promotion';
import { dumpDom, screenshot } from '../helpers/chromium';
import { createTemporalEnv, independentPg, openTestRuntime } from '../helpers/real';
import { serveForTest } from '../helpers/serving';
import { withTestWorkers, workflowBundle } from '../helpers/workers';

/**
 * The registry page in headless Chromium against a real stack: two models trained by real
 * pipelines (three versions), promotions and a rollback by the promotion workflow, and a
 * monitoring check that breached. Every view is loaded, its numbers checked against the store,
 * and a screenshot kept (in .state/screenshots/registry-web).
 */

const TOKEN = 'registry-web-token-0123456789';
const id = randomUUID().slice(0, 6);
const A = `web-a-${id}`;
const B = `web-b-${id}`;
const SHOTS = path.join(PROJECT_ROOT, '.state', 'screenshots', 'registry-web');
let env: TestWorkflowEnvironment;
let runtime: WorkerRuntime;
let pg: PgClient;
let server: RunningModelServer;
let web: RegistryWeb;

const fast = { strategy: 'direct', loadTest: { seconds: 0.5, concurrency: 2 }, gates: { maxP99Ms: 1000 } } satisfies Partial<PromotionInput>;

async function train(model: string, n: number, rounds: number): Promise<TrainingResult> {
  const spec = { model, dataset: { flights: { from: '2001-01', to: '2001-01' } }, preset: 'flights-delay' as const, sampleRows: 20_000, hyperparameters: { rounds, maxDepth: 4 }, resources: { gpu: 0 } };
  return (await env.client.workflow.execute('continuousTraining', { taskQueue: TASK_QUEUES.control, workflowId: `ct-${model}-${n}`, args: [spec] })) as TrainingResult;
}

async function promote(input: PromotionInput): Promise<PromotionStatus> {
  return (await env.client.workflow.execute('promotion', { taskQueue: TASK_QUEUES.control, workflowId: promotionWorkflowId(input.model), args: [input] })) as PromotionStatus;
}

/** A window of served January flights whose distances tripled, scored 0.9 each: monitoring must breach. */
async function driftedWindow(model: string, start: number, rows: number): Promise<void> {
  const m = (await getModelByName(runtime.db, model))!;
  const prod = await runtime.db.selectFrom('model_aliases').select('model_version_id').where('model_id', '=', m.id).where('alias', '=', 'production').executeTakeFirstOrThrow();
  const served = await withDuckDb(async (c) => {
    const r = await c.runAndReadAll(
      `SELECT hour("date")::FLOAT, dayofweek("date")::FLOAT, distance::FLOAT * 3, origin::VARCHAR, destination::VARCHAR, (delay > 15)
         FROM read_parquet(${literal(flightsParquetPath())}) WHERE delay IS NOT NULL AND month("date") = 1 LIMIT ${rows}`,
    );
    return r.getRows();
  });
  const values = served.map((x, i) => ({
    request_id: `${model}-drift-${start}-${i}`,
    model_id: m.id,
    model_version_id: prod.model_version_id,
    ts: new Date(start + 1 + i),
    inputs: JSON.stringify({ hour: Number(x[0]), dayofweek: Number(x[1]), distance: Number(x[2]), origin: String(x[3]), destination: String(x[4]) }),
    outputs: JSON.stringify({ probability: 0.9, role: 'stable' }),
    latency_ms: 1,
    label: JSON.stringify(Boolean(x[5])),
    labeled_at: new Date(start + rows + 10),
  }));
  for (let i = 0; i < values.length; i += 1000) await runtime.db.insertInto('prediction_log').values(values.slice(i, i + 1000)).execute();
  const acts = createMonitoringActivities({ db: runtime.db, artifacts: runtime.artifacts });
  const end = start + 3600_000;
  await new MockActivityEnvironment().run(acts.monitoringCheck, { model, windowStart: new Date(start).toISOString(), windowEnd: new Date(end).toISOString(), labelsSince: new Date(start).toISOString(), thresholds: monitoringThresholds.parse({}) });
}

beforeAll(async () => {
  [env, runtime] = await Promise.all([createTemporalEnv(), openTestRuntime(`web-${id}`)]);
  pg = await independentPg();
  await workflowBundle();
  server = await serveForTest(runtime, TOKEN);
  await withTestWorkers(
    env,
    runtime,
    async () => {
      const a1 = await train(A, 1, 8);
      expect((await promote({ model: A, version: a1.version, ...fast })).outcome).toBe('promoted');
      const a2 = await train(A, 2, 12);
      expect((await promote({ model: A, version: a2.version, ...fast })).outcome).toBe('promoted');
      expect((await promote({ model: A, rollback: true, reason: 'registry page test: back to v1' })).outcome).toBe('rolled-back');
      await train(B, 1, 6);
    },
    { queues: [TASK_QUEUES.control, TASK_QUEUES.cpu] },
  );
  const hour = Date.parse('2026-06-01T00:00:00Z');
  await driftedWindow(A, hour, 1500);
  await driftedWindow(A, hour + 3600_000, 1500);
  web = await startRegistryWeb({ db: runtime.db, port: 0, host: '127.0.0.1', token: TOKEN, temporalUi: 'http://localhost:8233', namespace: 'default', log: createLogger('test-ui') });
  mkdirSync(SHOTS, { recursive: true });
}, 600_000);

afterAll(async () => {
  await web?.close();
  await server?.close();
  await pg?.end();
  await runtime?.close();
  await env?.teardown();
});

const text = (html: string) =>
  html
    .replace(/<[^>]+>/g, ' ')
    .replace(/&nbsp;/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();

/** The inner HTML of the table row `<tr attr="value">`. */
function row(html: string, attr: string, value: string): string {
  const m = new RegExp(`<tr [^>]*\\b${attr}="${value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"[^>]*>([\\s\\S]*?)</tr>`).exec(html);
  if (!m) throw new Error(`no row ${attr}=${value} in the page`);
  return m[1]!;
}

function field(rowHtml: string, name: string): string {
  const m = new RegExp(`data-field="${name}"[^>]*>([\\s\\S]*?)</t[dh]>`).exec(rowHtml);
  if (!m) throw new Error(`no field ${name} in ${rowHtml.slice(0, 300)}`);
  return text(m[1]!);
}

const count = (html: string, re: RegExp) => [...html.matchAll(re)].length;

/** A page as the browser rendered it, with its screenshot kept. */
async function view(page: string, shot: string): Promise<string> {
  const url = `${web.url}/${page}${page.includes('?') ? '&' : '?'}token=${TOKEN}`;
  const html = await dumpDom(url);
  await screenshot(url, path.join(SHOTS, `${shot}.png`));
  expect(statSync(path.join(SHOTS, `${shot}.png`)).size).toBeGreaterThan(5000);
  return html;
}

test('the models view: each model’s versions, aliases and latest verdict, as the store holds them', async () => {
  const html = await view('', 'models');
  for (const model of [A, B]) {
    const db = await pg.query(
      `select count(*)::int as versions, count(*) filter (where v.status = 'registered')::int as registered,
              (select pv.version from model_aliases a join model_versions pv on pv.id = a.model_version_id where a.model_id = m.id and a.alias = 'production') as production,
              (select r.figures->>'level' from monitoring_reports r where r.model_id = m.id and r.kind = 'check' order by r.window_end desc limit 1) as level
         from models m join model_versions v on v.model_id = m.id where m.name = $1 group by m.id`,
      [model],
    );
    const want = db.rows[0] as { versions: number; registered: number; production: number | null; level: string | null };
    const r = row(html, 'data-model', model);
    expect({ model, versions: field(r, 'versions'), registered: field(r, 'registered'), production: field(r, 'production'), monitoring: field(r, 'monitoring').split(' ')[0] }).toEqual({
      model,
      versions: String(want.versions),
      registered: String(want.registered),
      production: want.production === null ? '—' : `v${want.production}`,
      monitoring: want.level ?? '—',
    });
  }
  expect(field(row(html, 'data-model', A), 'production')).toBe('v1');
  expect(field(row(html, 'data-model', A), 'monitoring')).toMatch(/^act /);
});

test('a model’s view: versions with metrics and gates, the alias history with the rollback, monitoring over time with the breach, its runs', async () => {
  const html = await view(`model-${A}.html`, 'model');
  const versions = await pg.query(`select v.version, v.status, v.metrics->>'auc' as auc, v.metrics->>'logLoss' as log_loss from model_versions v join models m on m.id = v.model_id where m.name = $1 order by v.version`, [A]);
  expect(versions.rows).toHaveLength(2);
  for (const v of versions.rows as Array<{ version: number; status: string; auc: string; log_loss: string }>) {
    const r = row(html, 'data-version', String(v.version));
    expect({ status: field(r, 'status'), auc: field(r, 'auc'), logLoss: field(r, 'logLoss') }).toEqual({ status: v.status, auc: Number(v.auc).toFixed(4), logLoss: Number(v.log_loss).toFixed(4) });
  }
  const history = await pg.query(`select h.kind, v.version from alias_history h join models m on m.id = h.model_id join model_versions v on v.id = h.model_version_id where m.name = $1 order by h.id`, [A]);
  expect(count(html, /<tr data-alias="/g)).toBe(history.rows.length);
  expect(history.rows.filter((h: { kind: string }) => h.kind === 'rollback')).toEqual([{ kind: 'rollback', version: 1 }]);
  expect(row(html, 'data-kind', 'rollback')).toContain('registry page test: back to v1');
  // The tenure timeline draws every tenure; the rolled-back one in the warning colour.
  expect(html).toMatch(new RegExp(`id="alias-timeline" data-bars="${history.rows.length}"`));
  const checks = await pg.query(`select r.window_end, r.breach, r.figures from monitoring_reports r join models m on m.id = r.model_id where m.name = $1 and r.kind = 'check' order by r.window_end`, [A]);
  expect(checks.rows).toHaveLength(2);
  for (const c of checks.rows as Array<{ window_end: Date; breach: boolean; figures: { level: string; rows: number; prediction: { psi: number } } }>) {
    const r = row(html, 'data-check', c.window_end.toISOString());
    expect(c.breach).toBe(true);
    expect({ level: field(r, 'level'), rows: field(r, 'rows'), psi: field(r, 'predictionPsi') }).toEqual({ level: `${c.figures.level} breach`, rows: String(c.figures.rows), psi: c.figures.prediction.psi.toFixed(4) });
  }
  // Two checks are two points per drift line, with the breaches marked.
  expect(html).toMatch(/id="chart-drift" data-points="4"/);
  expect(count(html, /class="mark"/g)).toBeGreaterThanOrEqual(2);
  const runs = await pg.query(`select workflow_id, run_id from pipeline_runs where model_name = $1`, [A]);
  expect(runs.rows).toHaveLength(2);
  for (const r of runs.rows as Array<{ workflow_id: string; run_id: string }>) {
    expect(html).toContain(`href="http://localhost:8233/namespaces/default/workflows/${encodeURIComponent(r.workflow_id)}/${r.run_id}/history"`);
  }
});

test('a version’s view: metrics, gates and lineage (data, code, run, parent) from the store', async () => {
  const html = await view(`model-${A}.v2.html`, 'version');
  const v = (
    await pg.query(
      `select v.id, v.metrics, p.workflow_id, p.code_version from model_versions v join models m on m.id = v.model_id left join pipeline_runs p on p.id = v.training_run_id where m.name = $1 and v.version = 2`,
      [A],
    )
  ).rows[0] as { id: string; metrics: { auc: number; champion?: { version: number }; lineage: { snapshot: { uri: string } } }; workflow_id: string; code_version: string };
  expect(text(/data-field="metric-auc"[^>]*>([^<]*)</.exec(html)![1]!)).toBe(v.metrics.auc.toFixed(4));
  expect(text(/data-field="trainingRun"[^>]*>([^<]*)</.exec(html)![1]!)).toBe(v.workflow_id);
  expect(text(/data-field="codeVersion"[^>]*>([^<]*)</.exec(html)![1]!)).toBe(v.code_version);
  // Its parent: v1, production when it trained and the champion it was compared with.
  expect(v.metrics.champion?.version).toBe(1);
  expect(text(/data-field="parent"[^>]*>([^<]*)</.exec(html)![1]!)).toBe('v1');
  expect(html).toContain(v.metrics.lineage.snapshot.uri);
  const edges = await pg.query(`select relation from lineage_edges where to_kind = 'model_version' and to_id = $1`, [v.id]);
  expect(edges.rows.length).toBeGreaterThanOrEqual(4);
  expect(count(html, /<tr data-relation="/g)).toBe(edges.rows.length);
});

test('the runs view and a run’s steps, each with its state and timing, linked into the Temporal UI', async () => {
  const all = await pg.query(`select id::text, workflow_id, status from pipeline_runs order by id`);
  const list = await view('runs.html', 'runs');
  expect(count(list, /<tr data-run="/g)).toBe(all.rows.length);
  for (const r of all.rows as Array<{ id: string; status: string }>) expect(field(row(list, 'data-run', r.id), 'status')).toBe(r.status);
  const run = (all.rows as Array<{ id: string; workflow_id: string }>).find((r) => r.workflow_id === `ct-${A}-2`)!;
  const html = await view(`run-${run.id}.html`, 'run');
  const steps = await pg.query(`select step_name, status, attempts from step_runs where pipeline_run_id = $1`, [run.id]);
  expect(steps.rows.length).toBeGreaterThan(4);
  for (const s of steps.rows as Array<{ step_name: string; status: string; attempts: number }>) {
    const r = row(html, 'data-step', s.step_name);
    expect({ step: s.step_name, status: field(r, 'status'), attempts: field(r, 'attempts') }).toEqual({ step: s.step_name, status: s.status, attempts: String(s.attempts) });
    expect(field(r, 'duration')).toMatch(/^\d+(\.\d)? m?s$/);
  }
  expect(html).toMatch(/id="step-timeline" data-bars="\d+"/);
  expect(html).toContain(`/namespaces/default/workflows/${encodeURIComponent(run.workflow_id)}/`);
});

test('behind the admin token, read-only, and nothing loaded from elsewhere', async () => {
  const bare = await fetch(`${web.url}/`);
  expect(bare.status).toBe(401);
  expect(await bare.text()).not.toContain(A);
  expect((await fetch(`${web.url}/?token=wrong-token-000000000`)).status).toBe(401);
  const login = await fetch(`${web.url}/model-${A}.html?token=${TOKEN}`, { redirect: 'manual' });
  expect(login.status).toBe(303);
  expect(login.headers.get('location')).toBe(`/model-${A}.html`);
  const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
  expect(login.headers.get('set-cookie')).toMatch(/HttpOnly; SameSite=Strict/);
  const page = await fetch(`${web.url}/model-${A}.html`, { headers: { cookie } });
  expect(page.status).toBe(200);
  expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
  const body = await page.text();
  expect(body).not.toMatch(/<script|<link|<img|src=/);
  expect((await fetch(`${web.url}/`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
  expect((await fetch(`${web.url}/`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(405);
  expect((await fetch(`${web.url}/model-nobody.html`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(404);
});

test('the static export is the same pages as files: every link resolves, and Chromium shows the same numbers offline', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'registry-export-'));
  try {
    const files = await exportRegistrySite(runtime.db, dir, { temporalUi: 'http://localhost:8233', namespace: 'default' });
    const names = readdirSync(dir).sort();
    expect(names).toEqual(expect.arrayContaining(['index.html', 'runs.html', `model-${A}.html`, `model-${A}.v1.html`, `model-${A}.v2.html`, `model-${B}.html`, `model-${B}.v1.html`]));
    expect(files).toHaveLength(names.length);
    for (const name of names) {
      const html = readFileSync(path.join(dir, name), 'utf8');
      expect(html).not.toMatch(/<script|<link|<img|src=/);
      for (const [, href] of html.matchAll(/href="([^"]+)"/g)) {
        if (href!.startsWith('http://localhost:8233/')) continue;
        expect({ from: name, href, exists: existsSync(path.join(dir, href!)) }).toEqual({ from: name, href, exists: true });
      }
    }
    const offline = await dumpDom(`file://${path.join(dir, `model-${A}.html`)}`);
    const served = await dumpDom(`${web.url}/model-${A}.html?token=${TOKEN}`);
    for (const v of ['1', '2']) expect(field(row(offline, 'data-version', v), 'auc')).toBe(field(row(served, 'data-version', v), 'auc'));
    expect(count(offline, /<tr data-alias="/g)).toBe(count(served, /<tr data-alias="/g));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
