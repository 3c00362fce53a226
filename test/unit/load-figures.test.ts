import { peakOverlap } from '../../bench/load';

/** The load run's "CPU steps at once" figure: the most started-to-completed intervals open at one instant. */

test('disjoint, nested and chained intervals', () => {
  expect(peakOverlap([])).toBe(0);
  expect(peakOverlap([{ startedAt: 0, completedAt: 10 }, { startedAt: 20, completedAt: 30 }])).toBe(1);
  expect(peakOverlap([{ startedAt: 0, completedAt: 100 }, { startedAt: 10, completedAt: 20 }, { startedAt: 15, completedAt: 50 }, { startedAt: 60, completedAt: 70 }])).toBe(3);
});

test('a step that starts the instant another completes took its slot, not a second one', () => {
  expect(peakOverlap([{ startedAt: 0, completedAt: 10 }, { startedAt: 10, completedAt: 20 }, { startedAt: 20, completedAt: 30 }])).toBe(1);
  expect(peakOverlap([{ startedAt: 0, completedAt: 10 }, { startedAt: 9, completedAt: 20 }])).toBe(2);
});
