import { BadRequest } from './bad-request';

/**
 * Tensor elements as raw bytes, the layout both the gRPC `raw_input_contents` and the REST binary
 * tensor extension use: flattened row-major, no padding, numbers little-endian, each BYTES element
 * a 4-byte little-endian length and then its bytes.
 */

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The elements of raw bytes for `datatype`, checked against the count the shape says. `field`
 * names where the bytes came from (`raw_input_contents[2]`, `binary_data_size`) in the error.
 */
export function decodeRaw(name: string, datatype: string, bytes: Uint8Array, count: number, field: string): Array<number | string | bigint> {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (datatype === 'FP32') {
    if (buf.length !== count * 4) throw new BadRequest(`input ${name}: ${field} is ${buf.length} bytes; ${count} FP32 elements take ${count * 4}`);
    return Array.from({ length: count }, (_, i) => buf.readFloatLE(i * 4));
  }
  if (datatype === 'INT64') {
    if (buf.length !== count * 8) throw new BadRequest(`input ${name}: ${field} is ${buf.length} bytes; ${count} INT64 elements take ${count * 8}`);
    // Past 2^53 a value is no timestamp: it stays a bigint, which checkInfer names as not an integer it takes.
    return Array.from({ length: count }, (_, i) => {
      const v = buf.readBigInt64LE(i * 8);
      return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
    });
  }
  if (datatype === 'BYTES') {
    const out: string[] = [];
    let at = 0;
    while (at < buf.length) {
      if (at + 4 > buf.length) throw new BadRequest(`input ${name}: ${field} ends inside the length prefix of element ${out.length}`);
      const len = buf.readUInt32LE(at);
      at += 4;
      if (at + len > buf.length) throw new BadRequest(`input ${name}: ${field}: element ${out.length} says ${len} bytes, ${buf.length - at} are left`);
      out.push(utf8Text(name, out.length, buf.subarray(at, at + len)));
      at += len;
      // More elements than the shape allows: stop reading, the count check names it.
      if (out.length > count) break;
    }
    return out;
  }
  throw new BadRequest(`input ${name}: raw ${datatype} data is not supported; the model takes FP32, INT64 and BYTES`);
}

/** A BYTES element as text: categorical inputs are strings, so bytes that are not UTF-8 are refused. */
export function utf8Text(name: string, index: number, bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new BadRequest(`input ${name}[${index}]: BYTES element is not valid UTF-8`);
  }
}

/** FP32 values as little-endian bytes, whatever the host's byte order. */
export function encodeFp32(values: Float32Array): Buffer {
  const out = Buffer.alloc(values.length * 4);
  for (let i = 0; i < values.length; i++) out.writeFloatLE(values[i]!, i * 4);
  return out;
}
