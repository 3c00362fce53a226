import type { Node, ValueInfo } from '../../infra/onnx/model';
import { encodeColumn, type CategoricalEncoding, type FeatureSpec, type Table } from './dataset';

/** Shared by every trainer: raw-feature graph inputs and the encoding that happens inside the graph. */

/** Float32 feature columns in model order, categorical ones encoded. */
export function featureMatrix(table: Table, features: FeatureSpec[], encodings: CategoricalEncoding[]): Float32Array[] {
  return features.map((f) => {
    if (f.kind === 'numeric') return table.numeric[f.name]!;
    return encodeColumn(table.categorical[f.name]!, encodings.find((e) => e.feature === f.name)!);
  });
}

/** Graph inputs: one [batch, 1] tensor per raw feature; categorical ones as strings. */
export function rawFeatureInputs(features: FeatureSpec[]): ValueInfo[] {
  return features.map((f) => ({ name: f.name, type: f.kind === 'numeric' ? 'FLOAT' : 'STRING', shape: ['batch', 1] }));
}

/** Nodes that encode categorical inputs (LabelEncoder) and concatenate all into `features`. */
export function preprocessingNodes(features: FeatureSpec[], encodings: CategoricalEncoding[]): Node[] {
  const nodes: Node[] = [];
  const columns = features.map((f) => {
    if (f.kind === 'numeric') return f.name;
    const enc = encodings.find((e) => e.feature === f.name)!;
    nodes.push({
      opType: 'LabelEncoder',
      domain: 'ai.onnx.ml',
      inputs: [f.name],
      outputs: [`${f.name}__encoded`],
      name: `encode_${f.name}`,
      attributes: {
        keys_strings: { kind: 'strings', value: enc.keys },
        values_floats: { kind: 'floats', value: enc.values },
        default_float: { kind: 'float', value: enc.unknown },
      },
    });
    return `${f.name}__encoded`;
  });
  nodes.push({ opType: 'Concat', inputs: columns, outputs: ['features'], name: 'concat_features', attributes: { axis: { kind: 'int', value: 1 } } });
  return nodes;
}
