import type { MonitoringCheck } from './types';

/** The logged inputs against the model's signature: inputs missing from rows, inputs nobody expects. */
export const schemaCheck: MonitoringCheck = {
  name: 'schema',
  run(ctx) {
    const expected = ctx.input.schema?.expected ?? Object.keys(ctx.input.baseline);
    const keyRows = ctx.input.schema?.keyRows;
    // A key some rows lack is missing; only rows that were logged can tell, so an empty window says nothing.
    const missingInputs = keyRows && ctx.rows ? expected.filter((k) => (keyRows[k] ?? 0) < ctx.rows) : [];
    const unexpectedInputs = keyRows ? Object.keys(keyRows).filter((k) => !expected.includes(k)).sort() : [];
    ctx.figures.quality = { missingInputs, unexpectedInputs, schemaChanged: missingInputs.length > 0 || unexpectedInputs.length > 0 };
    if (missingInputs.length) ctx.act.push(`schema: inputs missing from logged rows: ${missingInputs.join(', ')}`);
    if (unexpectedInputs.length) ctx.act.push(`schema: unexpected inputs: ${unexpectedInputs.join(', ')}`);
  },
};
