import { seededRandom, type Table } from '../../activities/ml/dataset';

/** The features the model server tests serve: two numeric, one categorical. */
export const SERVING_FEATURES = [
  { name: 'hour', kind: 'numeric' as const },
  { name: 'distance', kind: 'numeric' as const },
  { name: 'origin', kind: 'categorical' as const },
];
export const SERVING_ORIGINS = ['ATL', 'ORD', 'DFW', 'LAX', 'SFO', 'JFK'];

/** Flights-like rows with a label that depends on every feature; `shift` moves its base rate (a version that scores differently). */
export function servingTable(rows: number, seed: number, shift = 0): Table {
  const r = seededRandom(seed);
  const hour = new Float32Array(rows);
  const distance = new Float32Array(rows);
  const origin: string[] = [];
  const label = new Uint8Array(rows);
  for (let i = 0; i < rows; i++) {
    hour[i] = Math.floor(r() * 24);
    distance[i] = Math.round(100 + r() * 2500);
    const o = Math.floor(r() * SERVING_ORIGINS.length);
    origin.push(SERVING_ORIGINS[o]!);
    const logit = -1.5 + shift + (hour[i]! > 16 ? 1 : 0) + (o % 2 ? 0.5 : -0.3) + distance[i]! / 5000;
    label[i] = r() < 1 / (1 + Math.exp(-logit)) ? 1 : 0;
  }
  return { rows, features: SERVING_FEATURES, numeric: { hour, distance }, categorical: { origin }, label };
}
