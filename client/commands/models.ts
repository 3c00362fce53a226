import { parseCommand, requireModel } from '../args';
import { fixed, isoSeconds, print, printJson, table } from '../output';
import { UserFacingError } from '../../infra/errors';
import { headlineMetric } from '../../workflows/contracts/headline-metric';
import { ALIASES, type Alias } from '../../infra/db/schema';
import { listAliasHistory, listModels, openRegistry, type AliasMoveView, type ModelView } from '../registry';

export async function models(argv: string[]): Promise<void> {
  const { values } = parseCommand('models', argv, {
    model: { type: 'string' },
    history: { type: 'boolean', default: false },
    alias: { type: 'string' },
    at: { type: 'string' },
    json: { type: 'boolean', default: false },
  });
  const model = values.model !== undefined ? requireModel('models', values.model) : undefined;
  if (values.history || values.at !== undefined || values.alias !== undefined) {
    if (!model) throw new UserFacingError('models: --history, --alias and --at need --model <name>');
    if (values.alias !== undefined && !ALIASES.includes(values.alias as Alias)) throw new UserFacingError(`models: --alias: must be one of ${ALIASES.join(', ')} (got ${JSON.stringify(values.alias)})`);
    const at = values.at !== undefined ? new Date(values.at) : undefined;
    if (at && Number.isNaN(at.getTime())) throw new UserFacingError(`models: --at: not a date and time (got ${JSON.stringify(values.at)}; e.g. 2026-12-01T10:00:00Z)`);
    const registry = await openRegistry();
    try {
      const moves = await listAliasHistory(registry.db, model, { alias: values.alias as Alias | undefined, at });
      if (values.json) printJson(moves);
      else print(historyView(model, moves, at));
    } finally {
      await registry.close();
    }
    return;
  }
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
  const rows = m.versions.map((v) => [`v${v.version}`, v.status, isoSeconds(v.createdAt), headlineMetric(v), fixed(v.metrics.logLoss), v.aliases.join(','), v.trainingWorkflowId, v.rejectionReasons.join('; ')]);
  return `${head}\n${table(['version', 'status', 'created', 'metric', 'log loss', 'aliases', 'training run', 'rejection reasons'], rows)
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n')}`;
}

export function historyView(model: string, moves: AliasMoveView[], at?: Date): string {
  if (!moves.length) return at ? `${model}: no alias held a version at ${at.toISOString()}` : `${model}: no alias has moved yet`;
  const head = at ? `${model} at ${at.toISOString()}:` : `${model}: alias history (oldest first)`;
  const rows = moves.map((m) => [m.alias, `v${m.version}`, m.from !== null ? `v${m.from}` : '', isoSeconds(m.validFrom), m.validUntil ? isoSeconds(m.validUntil) : 'now', m.kind, m.endedBy ?? '', m.movedBy ? `${m.movedBy}${typeof m.details.runId === 'string' ? ` (run ${m.details.runId.slice(0, 8)})` : ''}` : '', m.reason ?? '']);
  return `${head}\n${table(['alias', 'version', 'from', 'since', 'until', 'how', 'ended by', 'workflow', 'why'], rows)
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n')}`;
}
