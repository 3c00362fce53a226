import { Pool } from 'pg';
import { connectionSettingsOf, createDb, quoteIdent, schemaOf, validateSchemaName } from '../../infra/db/connection';
import { ConfigError } from '../../infra/errors';

// Nothing here connects: pools connect lazily, and kysely only on the first query.

describe('createDb options', () => {
  test('the schema defaults to mlops and is remembered per instance', async () => {
    const a = createDb('postgres://u@127.0.0.1:1/x');
    const b = createDb('postgres://u@127.0.0.1:1/x', { schema: 'team_b' });
    try {
      expect(schemaOf(a)).toBe('mlops');
      expect(schemaOf(b)).toBe('team_b');
    } finally {
      await a.destroy();
      await b.destroy();
    }
  });

  test.each(['Bad-Name', 'MLOPS', '1st', '', 'a b', 'x"y', 'a'.repeat(64)])('schema %j is a ConfigError naming `schema`', (schema) => {
    expect(() => createDb('postgres://u@127.0.0.1:1/x', { schema })).toThrow(ConfigError);
    expect(() => validateSchemaName(schema)).toThrow(/^schema: /);
  });

  test('identifiers are quoted', () => {
    expect(quoteIdent('mlops')).toBe('"mlops"');
    expect(quoteIdent('a"b')).toBe('"a""b"');
  });
});

describe("a user's pool: our own pool with its connection settings", () => {
  test('keeps the password and ssl key that pg-pool hides, and leaves their options alone', async () => {
    const ssl = { rejectUnauthorized: true, key: 'PRIVATE KEY', cert: 'CERT' };
    const theirs = new Pool({ host: 'db.example', port: 6543, user: 'app', password: 's3cret', database: 'prod', ssl, max: 3, application_name: 'their-app' });
    try {
      // pg-pool makes these non-enumerable: a spread alone would lose them.
      expect(Object.keys(theirs.options)).not.toContain('password');
      const settings = connectionSettingsOf(theirs);
      expect(settings).toMatchObject({ host: 'db.example', port: 6543, user: 'app', password: 's3cret', database: 'prod', max: 3, application_name: 'their-app' });
      expect((settings.ssl as typeof ssl).key).toBe('PRIVATE KEY');
      expect((settings.ssl as typeof ssl).cert).toBe('CERT');
      expect(theirs.options.password).toBe('s3cret');

      const db = createDb({ pool: theirs }, { schema: 'team_c' });
      expect(schemaOf(db)).toBe('team_c');
      await db.destroy();
      // Ours ended, theirs not.
      expect(theirs.ended).toBe(false);
    } finally {
      await theirs.end();
    }
  });
});
