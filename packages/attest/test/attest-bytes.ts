/** Builds a TPMS_ATTEST quote structure by hand, for tests of the parts that read one (no TPM, no signature). */
export function attestBytes(q: {
  nonce: Uint8Array;
  selection: { alg: number; pcrs: number[] }[];
  pcrDigest: Uint8Array;
}): Buffer {
  const parts: Buffer[] = [];
  const u16 = (n: number) => {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(n);
    return b;
  };
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  parts.push(u32(0xff544347), u16(0x8018));
  parts.push(u16(2), Buffer.from([0, 0x0b])); // qualifiedSigner
  parts.push(u16(q.nonce.length), Buffer.from(q.nonce));
  parts.push(Buffer.alloc(8), u32(7), u32(0), Buffer.from([1]), Buffer.alloc(8)); // clock info, firmware
  parts.push(u32(q.selection.length));
  for (const s of q.selection) {
    const bits = Buffer.alloc(3);
    for (const p of s.pcrs) bits[p >> 3] = (bits[p >> 3] as number) | (1 << (p & 7));
    parts.push(u16(s.alg), Buffer.from([3]), bits);
  }
  parts.push(u16(q.pcrDigest.length), Buffer.from(q.pcrDigest));
  return Buffer.concat(parts);
}

export const ALG_SHA1 = 0x0004;
export const ALG_SHA256 = 0x000b;
