/**
 * The few protobuf wire-format primitives ONNX serialisation needs (varint, length-delimited,
 * fixed32/64). Writing them here beats a generated 2 MB protobuf runtime for ~10 messages.
 */
export class ProtoWriter {
  private chunks: Buffer[] = [];
  private size = 0;

  private push(buf: Buffer): this {
    this.chunks.push(buf);
    this.size += buf.length;
    return this;
  }

  private tag(field: number, wireType: number): this {
    return this.rawVarint(BigInt((field << 3) | wireType));
  }

  private rawVarint(value: bigint): this {
    // int64 negatives are encoded as their 64-bit two's complement (10 bytes).
    let v = value < 0n ? (1n << 64n) + value : value;
    const bytes: number[] = [];
    do {
      let byte = Number(v & 0x7fn);
      v >>= 7n;
      if (v > 0n) byte |= 0x80;
      bytes.push(byte);
    } while (v > 0n);
    return this.push(Buffer.from(bytes));
  }

  varint(field: number, value: number | bigint): this {
    return this.tag(field, 0).rawVarint(BigInt(value));
  }

  bytes(field: number, value: Uint8Array | string): this {
    const buf = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
    this.tag(field, 2).rawVarint(BigInt(buf.length));
    return this.push(buf);
  }

  string(field: number, value: string | undefined): this {
    return value === undefined ? this : this.bytes(field, value);
  }

  message(field: number, build: (w: ProtoWriter) => void): this {
    const inner = new ProtoWriter();
    build(inner);
    return this.bytes(field, inner.finish());
  }

  float(field: number, value: number): this {
    const buf = Buffer.alloc(4);
    buf.writeFloatLE(value);
    return this.tag(field, 5).push(buf);
  }

  packedFloats(field: number, values: ArrayLike<number>): this {
    const buf = Buffer.alloc(values.length * 4);
    for (let i = 0; i < values.length; i++) buf.writeFloatLE(values[i]!, i * 4);
    return this.bytes(field, buf);
  }

  packedDoubles(field: number, values: ArrayLike<number>): this {
    const buf = Buffer.alloc(values.length * 8);
    for (let i = 0; i < values.length; i++) buf.writeDoubleLE(values[i]!, i * 8);
    return this.bytes(field, buf);
  }

  packedVarints(field: number, values: ArrayLike<number | bigint>): this {
    const inner = new ProtoWriter();
    for (let i = 0; i < values.length; i++) inner.rawVarint(BigInt(values[i]!));
    return this.bytes(field, inner.finish());
  }

  /** Bytes already encoded as fields (copied from another message). */
  raw(bytes: Uint8Array): this {
    return this.push(Buffer.from(bytes));
  }

  finish(): Buffer {
    return Buffer.concat(this.chunks, this.size);
  }
}
