// Jest runs each test file in its own VM realm, whose Float32Array is not the one native
// add-ons (onnxruntime-node) create their outputs with, so `instanceof` checks inside
// onnxruntime-common fail. Sharing the outer realm's typed-array constructors fixes that.
const { TestEnvironment } = require('jest-environment-node');

const TYPED = [
  'ArrayBuffer', 'SharedArrayBuffer', 'DataView', 'Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array',
  'Int32Array', 'Uint32Array', 'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array',
];

class SharedTypedArrayEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of TYPED) this.global[name] = globalThis[name];
  }
}

module.exports = SharedTypedArrayEnvironment;
