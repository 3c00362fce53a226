import { ConfigError } from '../../infra/errors';
import { portInUse, serverOptions, servingSettings } from '../../workers/serving/settings';

/** MLOPS_SERVE_* as `npm run serve` and the dev stack read them. */

test('defaults: REST on 8000; gRPC off for npm run serve, on the caller\'s port for the dev stack', () => {
  expect(serverOptions(servingSettings({}))).toMatchObject({ port: 8000, host: '127.0.0.1', grpcPort: undefined, batching: { maxDelayMs: 2, maxRows: 1024 } });
  expect(servingSettings({}, { grpcPort: 8081 }).MLOPS_SERVE_GRPC_PORT).toBe(8081);
  expect(servingSettings({ MLOPS_SERVE_GRPC_PORT: 'off' }, { grpcPort: 8081 }).MLOPS_SERVE_GRPC_PORT).toBeUndefined();
  expect(servingSettings({ MLOPS_SERVE_GRPC_PORT: ' OFF ' }, { grpcPort: 8081 }).MLOPS_SERVE_GRPC_PORT).toBeUndefined();
  expect(servingSettings({ MLOPS_SERVE_GRPC_PORT: '0' }, { grpcPort: 8081 }).MLOPS_SERVE_GRPC_PORT).toBe(0);
});

test.each([
  [{ MLOPS_SERVE_GRPC_PORT: 'eighty' }, 'MLOPS_SERVE_GRPC_PORT'],
  [{ MLOPS_SERVE_GRPC_PORT: '70000' }, 'MLOPS_SERVE_GRPC_PORT'],
  [{ MLOPS_SERVE_PORT: '-1' }, 'MLOPS_SERVE_PORT'],
  [{ MLOPS_ADMIN_TOKEN: 'short' }, 'MLOPS_ADMIN_TOKEN'],
])('%j is refused naming %s', (env, name) => {
  expect(() => servingSettings(env, { grpcPort: 8081 })).toThrow(ConfigError);
  expect(() => servingSettings(env, { grpcPort: 8081 })).toThrow(new RegExp(`${name}: `));
});

test('a port in use names the variable of the port it is about', () => {
  const s = servingSettings({ MLOPS_SERVE_GRPC_PORT: '8081' });
  const inUse = (message: string) => Object.assign(new Error(message), { code: 'EADDRINUSE' });
  expect(portInUse(inUse('listen EADDRINUSE: address already in use 127.0.0.1:8000'), s)).toBe('port 8000 is in use (MLOPS_SERVE_PORT)');
  expect(portInUse(inUse('gRPC: cannot listen on 127.0.0.1:8081: No address added'), s)).toBe('port 8081 is in use (MLOPS_SERVE_GRPC_PORT)');
  expect(portInUse(new Error('other'), s)).toBeUndefined();
});
