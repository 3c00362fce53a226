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
  deploy?: { resources?: { reservations?: { devices?: Array<{ driver: string; capabilities: string[] }> } } };
}

const compose = parse(readFileSync(path.join(PROJECT_ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, Service> };
const pkg = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
const services = compose.services;
const workers = Object.entries(services).filter(([name]) => name.startsWith('worker-'));

const hostPorts = (s: Service) => (s.ports ?? []).map((p) => Number(p.split(':')[1]));

test('the production-shaped services are all there', () => {
  expect(Object.keys(services).sort()).toEqual(['minio', 'model-server', 'postgresql', 'temporal', 'temporal-ui', 'webhook', 'worker-control', 'worker-cpu', 'worker-gpu']);
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
