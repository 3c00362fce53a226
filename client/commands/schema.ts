import { UserFacingError } from '../../infra/errors';
import { acceptDataSchema, getModelByName, listDataSchemas } from '../../infra/db/repositories';
import { parseCommand, requireModel } from '../args';
import { isoSeconds, print, printJson, table } from '../output';
import { openRegistry } from '../registry';

/**
 * `mlops schema --model M` lists a model's data schema versions (accepted and proposed);
 * `mlops schema accept --model M [--version N]` accepts the newest proposal — the schema of a
 * span that stopped its run because its columns changed — as the model's current schema.
 */
export async function schema(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv[0] && !argv[0].startsWith('-') ? argv : ['list', ...argv];
  if (sub !== 'list' && sub !== 'accept') throw new UserFacingError(`schema: unknown subcommand ${JSON.stringify(sub)} (list, accept)`);
  const { values } = parseCommand(`schema ${sub}`, rest, { model: { type: 'string' }, version: { type: 'string' }, by: { type: 'string' }, json: { type: 'boolean', default: false } });
  const model = requireModel(`schema ${sub}`, values.model);
  const version = values.version !== undefined ? Number(values.version) : undefined;
  if (version !== undefined && !(Number.isInteger(version) && version >= 1)) throw new UserFacingError(`schema ${sub}: --version: must be a positive integer (got ${JSON.stringify(values.version)})`);
  const registry = await openRegistry();
  try {
    const m = await getModelByName(registry.db, model);
    if (!m) throw new UserFacingError(`no model named ${JSON.stringify(model)} in the registry`);
    if (sub === 'accept') {
      const by = values.by ?? process.env.USER ?? 'mlops cli';
      const result = await acceptDataSchema(registry.db, m.id, `mlops schema accept (${by})`, version).catch((err: Error) => {
        throw new UserFacingError(`schema accept: ${err.message}`);
      });
      if (!result) throw new UserFacingError(`schema accept: ${model} has no proposed schema${version !== undefined ? ` version ${version}` : ''} (mlops schema --model ${model} lists them)`);
      if (values.json) printJson({ model, version: result.row.version, status: result.row.status, accepted: result.accepted });
      else print(result.accepted ? `${model}: schema version ${result.row.version} accepted; resume the stopped run: mlops resume --workflow-id <id>` : `${model}: schema version ${result.row.version} was already accepted`);
      return;
    }
    const rows = await listDataSchemas(registry.db, m.id);
    if (values.json) printJson(rows);
    else if (!rows.length) print(`${model}: no data schema yet (the first training run records version 1)`);
    else
      print(
        `${model}: data schemas\n${table(
          ['version', 'status', 'created', 'accepted', 'by', 'changes'],
          rows.map((r) => [`v${r.version}`, r.status, isoSeconds(r.created_at), isoSeconds(r.accepted_at), r.accepted_by ?? '', ((r.changes as { changes?: string[] } | null)?.changes ?? []).join('; ')]),
        )
          .split('\n')
          .map((l) => `  ${l}`)
          .join('\n')}`,
      );
  } finally {
    await registry.close();
  }
}
