import { readFileSync } from 'node:fs';
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
  deploy?: { resources?: { reservations?: { devices?: Array<{ driver: string; capabilities: string[] }> } } };
}

const compose = parse(readFileSync(path.join(PROJECT_ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, Service> };
const pkg = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
const services = compose.services;
const workers = Object.entries(services).filter(([name]) => name.startsWith('worker-'));

const hostPorts = (s: Service) => (s.ports ?? []).map((p) => Number(p.split(':')[1]));

test('the production-shaped services are all there', () => {
  expect(Object.keys(services).sort()).toEqual(['alertmanager', 'minio', 'model-server', 'postgresql', 'prometheus', 'temporal', 'temporal-ui', 'webhook', 'worker-control', 'worker-cpu', 'worker-gpu']);
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
  const files = ['infra/metrics.ts', 'workers/serving/metrics.ts', 'workers/metrics-server.ts', 'workers/triggers/webhook.ts', 'activities/step-metrics.ts'];
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
