import type { MulticlassTrainingResult, RegressionTrainingResult } from '../../workflows/continuous-training';
import { readmeBlock, runReadmeLine } from '../helpers/readme-commands';
import { useServingServices } from '../helpers/services';
import { withTestWorkers } from '../helpers/workers';

/**
 * The README's multiclass and regression examples, run as written with the Temporal CLI against
 * real services, on the table that comes with the package: both train, pass their gates and are
 * registered with what their task gives.
 */

jest.setTimeout(600_000);

const services = useServingServices(`readme-tasks-${Date.now().toString(36)}`, 'readme-tasks-token-0123');

test('the README\'s multiclass and regression examples train and register as written', async () => {
  const lines = readmeBlock('other-tasks');
  expect(lines.map((l) => l.split(' ').slice(0, 3).join(' '))).toEqual(['temporal workflow start', 'temporal workflow start', 'temporal workflow result', 'temporal workflow result']);
  const outputs = await withTestWorkers(services.env, services.runtime, async () => {
    const out: string[] = [];
    for (const line of lines) out.push(await runReadmeLine(line.replace(/\s+#.*$/, ''), services.env));
    return out;
  });
  const result = (text: string) => JSON.parse(text).closeEvent.workflowExecutionCompletedEventAttributes.result[0];
  const weather = result(outputs[2]!) as MulticlassTrainingResult;
  expect(weather).toMatchObject({ model: 'seattle-weather', status: 'registered', task: 'multiclass', classes: ['drizzle', 'fog', 'rain', 'snow', 'sun'] });
  console.log(`seattle-weather: macro-F1 ${weather.metrics.macroF1.toFixed(4)} (logreg ${weather.baseline.macroF1.toFixed(4)}), log loss ${weather.metrics.logLoss.toFixed(4)}, accuracy ${weather.metrics.accuracy.toFixed(4)}`);
  const temp = result(outputs[3]!) as RegressionTrainingResult;
  expect(temp).toMatchObject({ model: 'seattle-temp-max', status: 'registered', task: 'regression' });
  console.log(`seattle-temp-max: RMSE ${temp.metrics.rmse.toFixed(4)} (ridge ${temp.baselineRmse.toFixed(4)}), R² ${temp.metrics.r2.toFixed(4)}`);
  expect(temp.metrics.r2).toBeGreaterThan(0.5);
  const rows = await services.pg.query(`select m.name, mv.status, mv.metrics->>'task' as task from model_versions mv join models m on m.id = mv.model_id where m.name in ('seattle-weather', 'seattle-temp-max') order by m.name`);
  expect(rows.rows).toEqual([
    { name: 'seattle-temp-max', status: 'registered', task: 'regression' },
    { name: 'seattle-weather', status: 'registered', task: 'multiclass' },
  ]);
});
