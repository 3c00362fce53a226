import { ConfigError } from '../../infra/errors';
import { loadConfig, tracingFromEnv } from '../../infra/config';
import { routeOf } from '../../workers/serving/tracing';

describe('tracing from the OTEL_* variables', () => {
  test('off by default, and with nothing but the naming variables', () => {
    expect(loadConfig({}).tracing).toBeUndefined();
    expect(tracingFromEnv({ OTEL_SERVICE_NAME: 'x', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_TRACES_EXPORTER: 'otlp' })).toBeUndefined();
    expect(tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: '' })).toBeUndefined();
    // Meant for another program: with no endpoint of ours they are not read.
    expect(tracingFromEnv({ OTEL_TRACES_EXPORTER: 'zipkin', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toBeUndefined();
  });

  test('OTEL_EXPORTER_OTLP_ENDPOINT: the base URL, /v1/traces appended; http/protobuf by default', () => {
    expect(tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' })).toEqual({ url: 'http://127.0.0.1:4318/v1/traces', protocol: 'http/protobuf', serviceName: undefined, resourceAttributes: {} });
    expect(tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://otel.example.com/ingest/' })?.url).toBe('https://otel.example.com/ingest/v1/traces');
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }).tracing?.url).toBe('http://collector:4318/v1/traces');
  });

  test('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: the traces URL as is, before the base one', () => {
    expect(tracingFromEnv({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/custom/traces' })?.url).toBe('http://collector:4318/custom/traces');
    expect(tracingFromEnv({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://a:4318/t', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://b:4318' })?.url).toBe('http://a:4318/t');
  });

  test('protocol, service name and resource attributes; the traces protocol before the general one', () => {
    const t = tracingFromEnv({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
      OTEL_SERVICE_NAME: 'acme-workers',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=prod, team=ml%20platform',
    });
    expect(t).toEqual({ url: 'http://c:4318/v1/traces', protocol: 'http/json', serviceName: 'acme-workers', resourceAttributes: { 'deployment.environment': 'prod', team: 'ml platform' } });
  });

  test.each([
    [{ OTEL_SDK_DISABLED: 'true' }],
    [{ OTEL_SDK_DISABLED: 'TRUE' }],
    [{ OTEL_TRACES_EXPORTER: 'none' }],
    [{ OTEL_TRACES_EXPORTER: ' none ' }],
  ])('%j turns it off whatever the endpoint', (off) => {
    expect(tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/v1/traces', ...off })).toBeUndefined();
    // Off, the protocol is not read: a grpc meant for another program stops none of ours.
    expect(tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', ...off })).toBeUndefined();
  });

  test('OTEL_SDK_DISABLED=false and OTEL_TRACES_EXPORTER=otlp leave it on', () => {
    expect(tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'false', OTEL_TRACES_EXPORTER: 'otlp' })?.url).toBe('http://c:4318/v1/traces');
  });

  test.each([
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }, /OTEL_EXPORTER_OTLP_ENDPOINT: must be an http:\/\/ or https:\/\/ URL/],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'grpc://collector:4317' }, /OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: must be an http:\/\/ or https:\/\/ URL/],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, /OTEL_EXPORTER_OTLP_PROTOCOL: must be http\/protobuf or http\/json .*grpc is not supported/],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http' }, /OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: must be http\/protobuf or http\/json/],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'yes please' }, /OTEL_SDK_DISABLED: expected true or false/],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'zipkin' }, /OTEL_TRACES_EXPORTER: only otlp \(or none, for no traces\) is supported/],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_RESOURCE_ATTRIBUTES: 'team' }, /OTEL_RESOURCE_ATTRIBUTES: "team" is not key=value/],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_RESOURCE_ATTRIBUTES: 'team=%zz' }, /OTEL_RESOURCE_ATTRIBUTES: the value of team is not valid percent-encoding/],
  ])('%j → one clear error naming the variable', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });
});

describe('model server span routes', () => {
  test.each([
    ['/admin/models', '/admin/models', {}],
    ['/admin/models/flights-delay/traffic', '/admin/models/{name}/traffic', { 'mlops.model': 'flights-delay' }],
    ['/admin/models/flights-delay/load', '/admin/models/{name}/load', { 'mlops.model': 'flights-delay' }],
    ['/v2/models/flights-delay/infer', '/v2/models/{name}/infer', { 'mlops.model': 'flights-delay' }],
    ['/v2/models/flights-delay/versions/3/infer', '/v2/models/{name}/versions/{version}/infer', { 'mlops.model': 'flights-delay', 'mlops.model.version': 3 }],
    ['/v2/models/flights-delay/feedback', '/v2/models/{name}/feedback', { 'mlops.model': 'flights-delay' }],
    ['/v2/health/ready', '/v2/health/ready', {}],
  ])('%s → %s', (pathname, route, attributes) => {
    expect(routeOf(pathname)).toEqual({ route, attributes });
  });

  test('paths a client made up get no route (span names stay few)', () => {
    expect(routeOf('/admin/models/x/drop-everything').route).toBeUndefined();
    expect(routeOf('/v2/models/x/versions/1/whatever').route).toBeUndefined();
    expect(routeOf('/nothing/here').route).toBeUndefined();
    expect(routeOf('/v2/models/Not%20A%20Name/infer').attributes).toEqual({});
  });
});
