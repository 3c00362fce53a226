import type { Node, ValueInfo } from '../../infra/onnx/model';
import { encodeColumn, type CategoricalEncoding, type FeatureSpec, type Table } from './dataset';

/** Shared by every trainer: raw-feature graph inputs and the encoding that happens inside the graph. */

/**
 * A categorical feature's encodings, in order: one for most models, one per class for a
 * multiclass logistic regression. Each is a model column of its own.
 */
function encodingsOf(feature: string, encodings: CategoricalEncoding[]): CategoricalEncoding[] {
  const own = encodings.filter((e) => e.feature === feature);
  if (!own.length) throw new Error(`categorical feature ${feature} has no encoding`);
  return own;
}

/** Float32 feature columns in model order, categorical ones encoded (as many columns as the feature has encodings). */
export function featureMatrix(table: Table, features: FeatureSpec[], encodings: CategoricalEncoding[]): Float32Array[] {
  return features.flatMap((f) => {
    if (f.kind === 'numeric') return [table.numeric[f.name]!];
    return encodingsOf(f.name, encodings).map((enc) => encodeColumn(table.categorical[f.name]!, enc));
  });
}

/** Graph inputs: one [batch, 1] tensor per raw feature; categorical ones as strings. */
export function rawFeatureInputs(features: FeatureSpec[]): ValueInfo[] {
  return features.map((f) => ({ name: f.name, type: f.kind === 'numeric' ? 'FLOAT' : 'STRING', shape: ['batch', 1] }));
}

/** The LabelEncoder of a feature's `index`th encoding: the first keeps the names one-encoding graphs have always had. */
function encoderNode(feature: string, enc: CategoricalEncoding, index: number): Node {
  const suffix = index === 0 ? '' : `_${index}`;
  return {
    opType: 'LabelEncoder',
    domain: 'ai.onnx.ml',
    inputs: [feature],
    outputs: [`${feature}__encoded${suffix}`],
    name: `encode_${feature}${suffix}`,
    attributes: {
      keys_strings: { kind: 'strings', value: enc.keys },
      values_floats: { kind: 'floats', value: enc.values },
      default_float: { kind: 'float', value: enc.unknown },
    },
  };
}

/** Nodes that encode categorical inputs (LabelEncoder, one per encoding) and concatenate all, in featureMatrix's order, into `features`. */
export function preprocessingNodes(features: FeatureSpec[], encodings: CategoricalEncoding[]): Node[] {
  const nodes: Node[] = [];
  const columns = features.flatMap((f) => {
    if (f.kind === 'numeric') return [f.name];
    return encodingsOf(f.name, encodings).map((enc, i) => {
      const node = encoderNode(f.name, enc, i);
      nodes.push(node);
      return node.outputs[0]!;
    });
  });
  nodes.push({ opType: 'Concat', inputs: columns, outputs: ['features'], name: 'concat_features', attributes: { axis: { kind: 'int', value: 1 } } });
  return nodes;
}
