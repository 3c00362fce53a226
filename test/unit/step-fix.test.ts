import { fixHint, resumeCanFix, stepFix } from '../../workflows/contracts/step-fix';

test('a failure pauses unless it declares that nothing a resume can do fixes it', () => {
  expect(resumeCanFix(undefined)).toBe(true); // a timeout, an outage: may pass later
  expect(resumeCanFix({ report: {} })).toBe(true);
  expect(resumeCanFix({ fix: { overrides: ['label'] } })).toBe(true);
  expect(resumeCanFix({ fix: { overrides: [], action: 'deploy it' } })).toBe(true);
  expect(resumeCanFix({ fix: { overrides: [] } })).toBe(false);
  // Unknown fields from a newer worker are dropped, not trusted.
  expect(stepFix({ fix: { overrides: ['label', 'trainer'] } })).toEqual({ overrides: ['label'] });
  expect(resumeCanFix({ fix: { overrides: ['trainer'] } })).toBe(false);
});

test('the hint names the fix: the overrides with an example, the action, or the general line', () => {
  const hint = fixHint('ct-1', { fix: { overrides: ['label', 'dataset'] } });
  expect(hint).toContain(`resume with label or dataset changed: mlops resume --workflow-id ct-1 --overrides '{"label": {"column": "…", "greaterThan": 0}}'`);
  expect(hint).toContain('(or mlops abort --workflow-id ct-1)');
  expect(fixHint('ct-1', { fix: { overrides: ['dataset'], action: 'mlops schema accept --model m --version 2' } })).toMatch(/^mlops schema accept --model m --version 2, then: mlops resume --workflow-id ct-1; or resume with dataset changed/);
  expect(fixHint('ct-1', undefined)).toMatch(/^fix the cause, then: mlops resume --workflow-id ct-1 \[--overrides/);
});
