import { parseCommand, requireModel } from '../args';
import { fixed, isoSeconds, print, printJson, table } from '../output';
import { listModels, openRegistry, type ModelView } from '../registry';

export async function models(argv: string[]): Promise<void> {
  const { values } = parseCommand('models', argv, { model: { type: 'string' }, json: { type: 'boolean', default: false } });
  const model = values.model !== undefined ? requireModel('models', values.model) : undefined;
  const registry = await openRegistry();
  try {
    const list = await listModels(registry.db, model);
    if (values.json) printJson(list);
    else print(list.length ? list.map(modelView).join('\n\n') : 'no models registered yet (mlops train --model <name> --months 2001-01)');
  } finally {
    await registry.close();
  }
}

export function modelView(m: ModelView): string {
  const aliases = Object.entries(m.aliases).map(([a, v]) => `${a} v${v}`);
  const head = `${m.name}  (${m.versions.length} version${m.versions.length === 1 ? '' : 's'}${aliases.length ? `; ${aliases.join(', ')}` : ''}; created ${isoSeconds(m.createdAt)})`;
  if (!m.versions.length) return head;
  const rows = m.versions.map((v) => [`v${v.version}`, v.status, isoSeconds(v.createdAt), fixed(v.metrics.auc), fixed(v.metrics.logLoss), v.aliases.join(','), v.trainingWorkflowId, v.rejectionReasons.join('; ')]);
  return `${head}\n${table(['version', 'status', 'created', 'AUC', 'log loss', 'aliases', 'training run', 'rejection reasons'], rows)
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n')}`;
}
