import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { CONFIG_DOCS, loadConfig } from '../../infra/config';
import { PROJECT_ROOT } from '../../infra/paths';
import { START_REQUIREMENTS, unmetRequirements } from '../../infra/requirements';
import { TASK_QUEUES } from '../../workflows/contracts/names';

/** No Docker engine runs here, so the compose file is checked against the code instead. */
interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  depends_on?: string[] | Record<string, unknown>;
  deploy?: { resources?: { reservations?: { devices?: Array<{ driver: string; capabilities: string[] }> } } };
}

const compose = parse(readFileSync(path.join(PROJECT_ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, Service> };
const pkg = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
const services = compose.services;
const workers = Object.entries(services).filter(([name]) => name.startsWith('worker-'));

const hostPorts = (s: Service) => (s.ports ?? []).map((p) => Number(p.split(':')[1]));

test('the production-shaped services are all there', () => {
  expect(Object.keys(services).sort()).toEqual(['alertmanager', 'grafana', 'minio', 'model-server', 'postgresql', 'prometheus', 'temporal', 'temporal-ui', 'webhook', 'worker-control', 'worker-cpu', 'worker-gpu']);
});

test('the model server runs its entry point with the stores and a published port', () => {
  const svc = services['model-server']!;
  const pkg = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  expect(pkg.scripts[svc.command![2]!]).toBe('node dist/workers/model-server.js');
  const env = svc.environment!;
  const documented = new Set(CONFIG_DOCS.flatMap((d) => d.name.split(' / ').map((n) => n.trim())));
  for (const key of Object.keys(env)) expect(documented).toContain(key);
  expect(loadConfig(env).artifactRoot.kind).toBe('s3');
  expect(hostPorts(svc)).toContain(Number(env.MLOPS_SERVE_PORT));
  // OIP over gRPC too, published like REST.
  expect(hostPorts(svc)).toContain(Number(env.MLOPS_SERVE_GRPC_PORT));
  expect(env.MLOPS_ADMIN_TOKEN!.length).toBeGreaterThanOrEqual(16);
});

test('the Alertmanager webhook runs its entry point with a token and a published port', () => {
  const svc = services.webhook!;
  expect(pkg.scripts[svc.command![2]!]).toBe('node dist/workers/webhook.js');
  const env = svc.environment!;
  const documented = new Set(CONFIG_DOCS.flatMap((d) => d.name.split(' / ').map((n) => n.trim())));
  for (const key of Object.keys(env)) expect(documented).toContain(key);
  expect(loadConfig(env).webhook.port).toBe(8010);
  expect(hostPorts(svc)).toContain(Number(env.MLOPS_WEBHOOK_PORT));
  expect(env.MLOPS_WEBHOOK_TOKEN!.length).toBeGreaterThanOrEqual(16);
});

test('each worker runs the entry point for its queue', () => {
  const expected: Record<string, string> = { 'worker-control': 'dist/workers/control.js', 'worker-cpu': 'dist/workers/cpu.js', 'worker-gpu': 'dist/workers/gpu.js' };
  for (const [name, svc] of workers) {
    expect(svc.command?.slice(0, 2)).toEqual(['npm', 'run']);
    const script = pkg.scripts[svc.command![2]!];
    expect(script).toBe(`node ${expected[name]}`);
  }
  expect(Object.values(TASK_QUEUES).map((q) => q.replace('mlops-', 'worker-')).sort()).toEqual(workers.map(([n]) => n).sort());
});

test('worker environment: only variables the code reads, and they point at the services', () => {
  const documented = new Set(CONFIG_DOCS.flatMap((d) => d.name.split(' / ').map((n) => n.trim())));
  for (const [, svc] of workers) {
    const env = svc.environment!;
    for (const key of Object.keys(env)) expect(documented).toContain(key);
    // The code accepts it as a whole.
    const config = loadConfig(env);
    expect(config.artifactRoot.kind).toBe('s3');

    const [tHost, tPort] = env.TEMPORAL_ADDRESS!.split(':');
    expect(services[tHost!]).toBeDefined();
    expect(hostPorts(services[tHost!]!)).toContain(Number(tPort));

    const db = new URL(env.DATABASE_URL!);
    const pgEnv = services[db.hostname]!.environment!;
    expect([db.username, db.password, db.pathname.slice(1), Number(db.port)]).toEqual([pgEnv.POSTGRES_USER, pgEnv.POSTGRES_PASSWORD, pgEnv.POSTGRES_DB, 5432]);
    expect(hostPorts(services[db.hostname]!)).toContain(5432);

    const s3 = new URL(env.S3_ENDPOINT!);
    const minio = services[s3.hostname]!;
    expect(minio.command).toEqual(expect.arrayContaining(['--address', `:${s3.port}`]));
    expect([env.AWS_ACCESS_KEY_ID, env.AWS_SECRET_ACCESS_KEY]).toEqual([minio.environment!.MINIO_ROOT_USER, minio.environment!.MINIO_ROOT_PASSWORD]);
  }
});

test('Temporal runs on the PostgreSQL service and the UI talks to Temporal', () => {
  const t = services.temporal!.environment!;
  expect(t.POSTGRES_SEEDS).toBe('postgresql');
  expect(t.POSTGRES_USER).toBe(services.postgresql!.environment!.POSTGRES_USER);
  expect(services['temporal-ui']!.environment!.TEMPORAL_ADDRESS).toBe('temporal:7233');
  expect(hostPorts(services.temporal!)).toEqual([7233]);
});

test('the GPU worker reserves NVIDIA devices and names its class', () => {
  const gpu = services['worker-gpu']!;
  const devices = gpu.deploy?.resources?.reservations?.devices ?? [];
  expect(devices).toEqual([expect.objectContaining({ driver: 'nvidia', capabilities: ['gpu'] })]);
  expect(gpu.environment!.MLOPS_GPU_CLASS).toMatch(/^[a-z0-9-]+$/);
  expect(services['worker-cpu']!.deploy).toBeUndefined();
});

test('every service of ours has each variable its entry point needs at start', () => {
  const ours = Object.entries(services).filter(([, svc]) => svc.command?.[0] === 'npm');
  expect(ours.length).toBeGreaterThan(0);
  for (const [name, svc] of ours) {
    const script = svc.command![2]!;
    expect({ name, script, known: Object.hasOwn(START_REQUIREMENTS, script) }).toEqual({ name, script, known: true });
    const env = svc.environment ?? {};
    expect({ name, unmet: unmetRequirements(script, loadConfig(env), env) }).toEqual({ name, unmet: [] });
  }
  // The control worker drives the model server with the server's own admin token.
  expect(services['worker-control']!.environment!.MLOPS_ADMIN_TOKEN).toBe(services['model-server']!.environment!.MLOPS_ADMIN_TOKEN);
  expect(new URL(services['worker-control']!.environment!.MLOPS_MODEL_SERVER_URL!).port).toBe(services['model-server']!.environment!.MLOPS_SERVE_PORT);
});

/** Every metric family our code declares (counter, gauge, histogram with its _bucket/_sum/_count). */
function exportedMetrics(): Set<string> {
  const names = new Set<string>();
  const files = ['infra/metrics.ts', 'workers/serving/metrics.ts', 'workers/metrics-server.ts', 'workers/triggers/webhook.ts', 'activities/step-metrics.ts', 'workers/workflow-metrics.ts'];
  for (const f of files) {
    const src = readFileSync(path.join(PROJECT_ROOT, f), 'utf8');
    for (const m of src.matchAll(/\.(counter|gauge|histogram)\(\s*'(mlops_[a-z0-9_]+)'/g)) {
      names.add(m[2]!);
      if (m[1] === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${m[2]}${suffix}`);
    }
  }
  return names;
}

test('Prometheus scrapes every process on its metrics port, loads the shipped rules and alerts Alertmanager', () => {
  const dir = path.join(PROJECT_ROOT, 'infra', 'prometheus');
  const prom = parse(readFileSync(path.join(dir, 'prometheus.yml'), 'utf8')) as {
    rule_files: string[];
    alerting: { alertmanagers: Array<{ static_configs: Array<{ targets: string[] }> }> };
    scrape_configs: Array<{ job_name: string; static_configs: Array<{ targets: string[] }> }>;
  };
  const targets = prom.scrape_configs.flatMap((c) => c.static_configs.flatMap((s) => s.targets));
  const env = (name: string) => services[name]!.environment!;
  expect(targets.sort()).toEqual([
    ...workers.map(([name]) => `${name}:${env(name).MLOPS_METRICS_PORT}`),
    `model-server:${env('model-server').MLOPS_SERVE_PORT}`,
    `webhook:${env('webhook').MLOPS_WEBHOOK_PORT}`,
  ].sort());
  for (const [, svc] of workers) expect(loadConfig(svc.environment!).metrics).toEqual({ port: 9464, host: '0.0.0.0' });
  expect(prom.rule_files).toEqual(['mlops-rules.yml']);
  expect(prom.alerting.alertmanagers[0]!.static_configs[0]!.targets).toEqual(['alertmanager:9093']);
  expect(services.prometheus!.volumes).toContain('./infra/prometheus:/etc/prometheus/mlops:ro');
});

test('Alertmanager sends retrain alerts to the webhook with its token; every metric a rule reads is one the code exports', () => {
  const dir = path.join(PROJECT_ROOT, 'infra', 'prometheus');
  const am = parse(readFileSync(path.join(dir, 'alertmanager.yml'), 'utf8')) as {
    route: { receiver: string; routes: Array<{ matchers: string[]; receiver: string }> };
    receivers: Array<{ name: string; webhook_configs?: Array<{ url: string; http_config: { authorization: { type: string; credentials: string } } }> }>;
  };
  const retrain = am.route.routes.find((r) => r.matchers.includes('action="retrain"'))!;
  const hook = am.receivers.find((r) => r.name === retrain.receiver)!.webhook_configs![0]!;
  expect(hook.url).toBe(`http://webhook:${services.webhook!.environment!.MLOPS_WEBHOOK_PORT}/v1/alertmanager`);
  expect(hook.http_config.authorization).toEqual({ type: 'Bearer', credentials: services.webhook!.environment!.MLOPS_WEBHOOK_TOKEN });

  const rules = parse(readFileSync(path.join(dir, 'mlops-rules.yml'), 'utf8')) as { groups: Array<{ rules: Array<{ alert: string; expr: string; labels: Record<string, string> }> }> };
  const exported = exportedMetrics();
  const used = new Set(rules.groups.flatMap((g) => g.rules.flatMap((r) => [...r.expr.matchAll(/\bmlops_[a-z0-9_]+/g)].map((m) => m[0]))));
  expect(used.size).toBeGreaterThan(5);
  expect([...used].filter((m) => !exported.has(m))).toEqual([]);
  // A retrain alert must name its model: the webhook retrains the `model` label's model.
  for (const r of rules.groups.flatMap((g) => g.rules)) {
    expect(['retrain', 'page']).toContain(r.labels.action);
    if (r.labels.action === 'retrain') expect(r.expr).toMatch(/(by|on) \(model, version\)/);
  }
});

/** The shipped Grafana dashboard and its provisioning (infra/grafana/), read as Grafana reads them. */
interface GrafanaDatasourceRef { type?: string; uid?: string }
interface GrafanaPanel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: GrafanaDatasourceRef;
  targets?: Array<{ datasource?: GrafanaDatasourceRef; expr?: string; legendFormat?: string }>;
  panels?: GrafanaPanel[];
}
interface GrafanaDashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: GrafanaPanel[];
  templating: { list: Array<{ name: string; type: string; datasource?: GrafanaDatasourceRef; query: string | { query: string }; definition?: string; multi?: boolean; includeAll?: boolean }> };
}
const grafanaDir = path.join(PROJECT_ROOT, 'infra', 'grafana');
const readDashboard = () => JSON.parse(readFileSync(path.join(grafanaDir, 'dashboards', 'mlops.json'), 'utf8')) as GrafanaDashboard;
const readDatasources = () => parse(readFileSync(path.join(grafanaDir, 'provisioning', 'datasources', 'prometheus.yml'), 'utf8')) as {
  apiVersion: number;
  datasources: Array<{ name: string; uid: string; type: string; url: string; isDefault?: boolean }>;
};
const readProviders = () => parse(readFileSync(path.join(grafanaDir, 'provisioning', 'dashboards', 'mlops.yml'), 'utf8')) as {
  apiVersion: number;
  providers: Array<{ name: string; type: string; options: { path: string } }>;
};
/** Every panel, those nested in (collapsed) rows included. */
const allPanels = (panels: GrafanaPanel[]): GrafanaPanel[] => panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
const variableQuery = (v: GrafanaDashboard['templating']['list'][number]) => (typeof v.query === 'string' ? v.query : v.query.query);

test('the Grafana provisioning files parse: the default data source is the compose Prometheus, the provider reads files', () => {
  const { datasources } = readDatasources();
  expect(datasources).toHaveLength(1);
  const ds = datasources[0]!;
  expect(ds).toEqual(expect.objectContaining({ uid: 'mlops-prometheus', type: 'prometheus', isDefault: true }));
  const url = new URL(ds.url);
  expect(services[url.hostname]).toBeDefined();
  expect(hostPorts(services[url.hostname]!)).toContain(Number(url.port));
  const { providers } = readProviders();
  expect(providers).toEqual([expect.objectContaining({ type: 'file', options: expect.objectContaining({ path: '/var/lib/grafana/dashboards' }) })]);
});

test('the Grafana dashboard parses, and every panel queries the provisioned Prometheus with built-in panel types', () => {
  const dashboard = readDashboard();
  expect(dashboard.uid).toBe('temporal-mlops');
  expect(dashboard.title).toBe('temporal-mlops loops');
  expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(39);
  const uid = readDatasources().datasources[0]!.uid;
  const panels = allPanels(dashboard.panels);
  expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
  const builtIn = ['row', 'timeseries', 'stat', 'table', 'gauge', 'bargauge', 'state-timeline', 'status-history', 'barchart', 'heatmap', 'piechart', 'text'];
  for (const p of panels) {
    expect({ id: p.id, type: p.type, builtIn: builtIn.includes(p.type) }).toEqual({ id: p.id, type: p.type, builtIn: true });
    expect(Object.values(p.gridPos).every((n) => Number.isInteger(n))).toBe(true);
    if (p.type === 'row') continue;
    expect({ id: p.id, targets: (p.targets ?? []).length > 0 }).toEqual({ id: p.id, targets: true });
    if (p.datasource) expect(p.datasource).toEqual({ type: 'prometheus', uid });
    for (const t of p.targets!) {
      expect({ id: p.id, datasource: t.datasource }).toEqual({ id: p.id, datasource: { type: 'prometheus', uid } });
      expect(t.expr).toMatch(/\bmlops_/);
      expect(t.legendFormat).toBeTruthy();
    }
  }
  expect(panels.filter((p) => p.type !== 'row').length).toBeGreaterThan(20);
  for (const v of dashboard.templating.list) if (v.type === 'query') expect(v.datasource).toEqual({ type: 'prometheus', uid });
});

test('every metric the dashboard reads is one the code exports, and model series follow the model variable', () => {
  const dashboard = readDashboard();
  const model = dashboard.templating.list.find((v) => v.name === 'model')!;
  expect(variableQuery(model)).toBe('label_values(mlops_inference_requests_total, model)');
  expect([model.multi, model.includeAll]).toEqual([true, true]);
  const targets = allPanels(dashboard.panels).flatMap((p) => p.targets ?? []);
  const exprs = [...targets.map((t) => t.expr ?? ''), ...dashboard.templating.list.flatMap((v) => [variableQuery(v), v.definition ?? ''])];
  const used = new Set(exprs.flatMap((e) => [...e.matchAll(/\bmlops_[a-z0-9_]+/g)].map((m) => m[0])));
  expect(used.size).toBeGreaterThan(20);
  const exported = exportedMetrics();
  expect([...used].filter((m) => !exported.has(m)).sort()).toEqual([]);
  // A panel that shows series per model shows only the models picked.
  const perModel = targets.filter((t) => (t.legendFormat ?? '').includes('{{model}}'));
  expect(perModel.length).toBeGreaterThan(10);
  for (const t of perModel) expect(t.expr).toContain('model=~"$model"');
});

test('Grafana mounts the provisioning and dashboards folders where Grafana and the provider read them', () => {
  const svc = services.grafana!;
  expect(svc.image).toMatch(/^grafana\/grafana-oss:\d+\.\d+\.\d+$/);
  expect(hostPorts(svc)).toContain(3000);
  expect(svc.environment).toEqual(expect.objectContaining({ GF_AUTH_ANONYMOUS_ENABLED: 'true', GF_AUTH_ANONYMOUS_ORG_ROLE: 'Viewer' }));
  expect(svc.depends_on).toEqual(['prometheus']);
  const mounts = new Map((svc.volumes ?? []).map((v) => v.split(':')).map(([src, dst, mode]) => [dst!, { src: path.resolve(PROJECT_ROOT, src!), mode }]));
  expect(mounts.get('/etc/grafana/provisioning')).toEqual({ src: path.join(grafanaDir, 'provisioning'), mode: 'ro' });
  const dashboards = mounts.get(readProviders().providers[0]!.options.path);
  expect(dashboards).toEqual({ src: path.join(grafanaDir, 'dashboards'), mode: 'ro' });
  expect(readdirSync(dashboards!.src)).toContain('mlops.json');
});
