// Removes the `name` custom section from a WebAssembly module. The section maps function indices to
// names for stack traces and debuggers; nothing reads it at run time, and in a Worker's module it is
// about a sixth of the upload (worker-build keeps it: it passes --debuginfo to wasm-opt). Every other
// section is copied byte for byte.

/** Reads an unsigned LEB128 number at `offset`: [value, next offset]. */
function leb128(bytes, offset) {
  let value = 0;
  let shift = 0;
  for (;;) {
    if (offset >= bytes.length) throw new Error('truncated LEB128 number');
    const byte = bytes[offset++];
    value += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) return [value, offset];
    shift += 7;
    if (shift > 35) throw new Error('LEB128 number too long for a section size');
  }
}

/**
 * The module without its `name` section, and how many bytes that removed.
 * @param {Uint8Array} bytes a complete wasm module
 */
export function stripNames(bytes) {
  const magic = [0x00, 0x61, 0x73, 0x6d];
  if (bytes.length < 8 || magic.some((b, i) => bytes[i] !== b)) throw new Error('not a WebAssembly module');
  const kept = [bytes.subarray(0, 8)];
  let offset = 8;
  let removed = 0;
  while (offset < bytes.length) {
    const start = offset;
    const id = bytes[offset++];
    const [size, body] = leb128(bytes, offset);
    const end = body + size;
    if (end > bytes.length) throw new Error('a section runs past the end of the module');
    let isNames = false;
    if (id === 0) {
      const [length, name] = leb128(bytes, body);
      isNames = new TextDecoder().decode(bytes.subarray(name, name + length)) === 'name';
    }
    if (isNames) removed += end - start;
    else kept.push(bytes.subarray(start, end));
    offset = end;
  }
  const out = new Uint8Array(bytes.length - removed);
  let at = 0;
  for (const part of kept) {
    out.set(part, at);
    at += part.length;
  }
  return { bytes: out, removed };
}
