// A reader process for end-to-end tests: COUNT random reads of FILE compared
// against ORIGINAL. Exits 0 when every byte matched, 1 (printing the first
// mismatch) otherwise, 2 on a read error.
import { openSync, readSync } from 'node:fs';

const [file, original, countText, seedText, maxLenText] = process.argv.slice(2);
const count = Number(countText);
const maxLen = Number(maxLenText ?? 300 * 1024);
let x = Number(seedText) >>> 0 || 1;
const rand = () => {
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  return (x >>> 0) / 2 ** 32;
};
const a = openSync(file, 'r');
const b = openSync(original, 'r');
const { size } = await import('node:fs').then((fs) => fs.fstatSync(b));
for (let i = 0; i < count; i++) {
  const len = 1 + Math.floor(rand() * maxLen);
  const off = Math.floor(rand() * (size - 1));
  const got = Buffer.alloc(len);
  const want = Buffer.alloc(len);
  let n;
  try {
    n = readSync(a, got, 0, len, off);
  } catch (e) {
    console.error(`read error at ${off}+${len}: ${e.code ?? e.message}`);
    process.exit(2);
  }
  const m = readSync(b, want, 0, len, off);
  if (n !== m || Buffer.compare(got.subarray(0, n), want.subarray(0, m)) !== 0) {
    console.error(`mismatch at ${off}+${len}: got ${n} bytes, want ${m}`);
    process.exit(1);
  }
}
console.log(`${count} reads ok`);
