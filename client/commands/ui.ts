import path from 'node:path';
import { loadConfig } from '../../infra/config';
import { createLogger } from '../../infra/log';
import { temporalSettings } from '../../infra/temporal';
import { parseCommand, parseIntFlag } from '../args';
import { print, printJson } from '../output';
import { openRegistry } from '../registry';
import { exportRegistrySite, startRegistryWeb } from '../web/site';

/** `mlops ui`: the read-only registry page, served until Ctrl-C, or written as static files with --export. */
export async function ui(argv: string[]): Promise<void> {
  const { values } = parseCommand('ui', argv, {
    port: { type: 'string' },
    host: { type: 'string' },
    export: { type: 'string' },
    json: { type: 'boolean', default: false },
  });
  const config = loadConfig();
  const settings = { temporalUi: config.temporalUiUrl, namespace: temporalSettings().namespace };
  const registry = await openRegistry();
  try {
    if (values.export !== undefined) {
      const dir = path.resolve(values.export);
      const files = await exportRegistrySite(registry.db, dir, settings);
      if (values.json) printJson({ dir, files });
      else print(`registry exported: ${files.length} pages in ${dir} (open ${path.join(dir, 'index.html')})`);
      return;
    }
    const web = await startRegistryWeb({
      ...settings,
      db: registry.db,
      port: parseIntFlag('port', values.port) ?? config.ui.port,
      host: values.host ?? config.ui.host,
      token: config.modelServer.adminToken,
      log: createLogger('ui'),
    });
    if (values.json) printJson({ url: web.url });
    else print(`registry page: ${web.url}/${config.modelServer.adminToken ? '?token=<MLOPS_ADMIN_TOKEN>' : ''}   (Ctrl-C stops it)`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await web.close();
  } finally {
    await registry.close();
  }
}
