import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { scanHistory } from '../helpers/history-scan';

/** The stored histories the replay gate runs hold no secret and no dataset rows; the scanner finds both when they are there. */

const DIR = path.join(__dirname, '..', 'fixtures', 'histories');
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64');

test('every stored history is free of secrets and dataset rows', () => {
  const files = readdirSync(DIR).filter((f) => f.endsWith('.json'));
  expect(files.length).toBeGreaterThanOrEqual(5);
  for (const f of files) expect({ file: f, findings: scanHistory(JSON.parse(readFileSync(path.join(DIR, f), 'utf8')), f) }).toEqual({ file: f, findings: [] });
});

test('the scanner finds a password in a URL, a token, a given secret and a table of rows', () => {
  const history = {
    events: [
      { input: { payloads: [{ metadata: { encoding: 'anNvbi9wbGFpbg==' }, data: b64({ db: 'postgres://app:hunter2@db:5432/x' }) }] } },
      { input: { payloads: [{ metadata: {}, data: b64({ auth: 'Bearer abcdefghijklmnop0123' }) }] } },
      { input: { payloads: [{ metadata: {}, data: b64({ rows: Array.from({ length: 500 }, (_, i) => ({ origin: 'ORD', distance: i })) }) }] } },
      { input: { payloads: [{ metadata: {}, data: b64({ key: 'my-own-secret-value' }) }] } },
      { input: { payloads: [{ metadata: {}, data: b64({ uri: 's3://bucket/cas/sha256/ab/cd', rows: 508239 }) }] } },
    ],
  };
  expect(scanHistory(history, 'h', ['my-own-secret-value']).map((f) => f.what)).toEqual(['a database URL with a password', 'a bearer token', 'an array of 500 records (dataset rows)', 'the secret my-o…']);
  // Outside payloads (a failure message in plain text), a given secret is found as well.
  expect(scanHistory({ events: [{ failure: { message: 'cannot read with my-own-secret-value' } }] }, 'h', ['my-own-secret-value'])).toEqual([{ where: 'h', what: 'the secret my-o…' }]);
});
