import { randomUUID } from 'node:crypto';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createMonitoringActivities } from '../../activities/monitoring';
import type { TrainingResult } from '../../workflows/continuous-training';
import { TASK_QUEUES } from '../../workflows/contracts/names';
import { monitoringThresholds, type MonitoringReport } from '../../workflows/contracts/lifecycle';
import { promotionWorkflowId, type PromotionInput, type PromotionStatus } from '../../workflows/promotion';
import type { ServingServices } from './services';
import { waitFor } from './wait';
import { withTestWorkers } from './workers';

/**
 * The steps a whole-loop test takes on one model, on real services: train, promote, read
 * production, send late labels, wait for them in the log, run a monitoring check.
 */
export function modelLoop(services: ServingServices, model: string, adminToken: string) {
  const feedback = (body: unknown) =>
    fetch(`${services.server.url}/v2/models/${model}/feedback`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` }, body: JSON.stringify(body) });
  const now = async () => ((await services.pg.query(`select now() as t`)).rows[0].t as Date).toISOString();
  return {
    feedback,
    now,
    async train(spec: Record<string, unknown>): Promise<TrainingResult> {
      return withTestWorkers(services.env, services.runtime, async () => {
        const handle = await services.env.client.workflow.start('continuousTraining', { taskQueue: TASK_QUEUES.control, workflowId: `ct-${model}-${randomUUID().slice(0, 6)}`, args: [{ model, ...spec }] });
        return (await handle.result()) as TrainingResult;
      });
    },
    async promote(input: Partial<PromotionInput>): Promise<PromotionStatus> {
      return withTestWorkers(
        services.env,
        services.runtime,
        async () => {
          const handle = await services.env.client.workflow.start('promotion', { taskQueue: TASK_QUEUES.control, workflowId: promotionWorkflowId(model), args: [{ ...input, model }] });
          return (await handle.result()) as PromotionStatus;
        },
        { queues: [TASK_QUEUES.control] },
      );
    },
    async production(): Promise<number | undefined> {
      const r = await services.pg.query(`select mv.version from model_aliases a join models m on m.id = a.model_id join model_versions mv on mv.id = a.model_version_id where m.name = $1 and a.alias = 'production'`, [model]);
      return r.rows[0]?.version as number | undefined;
    },
    /** Waits until the log holds `n` labelled rows whose request ids start with `tag-`. */
    async labelled(tag: string, n: number): Promise<void> {
      await waitFor(`${n} labelled rows of ${tag} in the prediction log`, async () => {
        const r = await services.pg.query(`select count(*)::int n from prediction_log where request_id like $1 and label is not null`, [`${tag}-%`]);
        return r.rows[0].n === n ? true : undefined;
      });
    },
    async check(w: { start: string; end: string }, thresholds = {}): Promise<MonitoringReport> {
      const acts = createMonitoringActivities({ db: services.runtime.db, artifacts: services.runtime.artifacts });
      return new MockActivityEnvironment().run(acts.monitoringCheck, { model, windowStart: w.start, windowEnd: w.end, labelsSince: w.start, thresholds: monitoringThresholds.parse(thresholds) });
    },
    /**
     * Steady labelled traffic while a promotion bakes: `send` serves row i under a request id
     * (false when it was not served), and each served row's `labelOf(i)` arrives 300 ms later.
     */
    labelledTraffic(tag: string, rows: number, send: (i: number, id: string) => Promise<boolean>, labelOf: (i: number) => unknown) {
      let stop = false;
      let sent = 0;
      const loop = (async () => {
        while (!stop) {
          const labels: Array<{ request_id: string; label: unknown }> = [];
          for (let k = 0; k < 10 && !stop; k++) {
            const i = sent % rows;
            const id = `${tag}-${sent++}`;
            if (await send(i, id)) labels.push({ request_id: id, label: labelOf(i) });
          }
          await new Promise((r) => setTimeout(r, 300));
          if (labels.length) await (await feedback({ labels })).arrayBuffer();
        }
      })();
      return { stop: async () => ((stop = true), await loop) };
    },
  };
}
