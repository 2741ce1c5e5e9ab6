import { readFile } from 'node:fs/promises';
import { Swtpm, type TempDir, tempDir } from '@thfc/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeasurementLog } from '../src/measurement-log.js';
import { parseAttest } from '../src/quote-file.js';
import { parsePcrYaml, Tpm2Tools } from '../src/tpm.js';
import { TpmExtender } from '../src/tpm-extender.js';

/** tpm2-tools against a real software TPM (swtpm on loopback), started and stopped by this file. */
let swtpm: Swtpm;
let tpm: Tpm2Tools;
let dir: string;
let scratch: TempDir | undefined;

beforeAll(async () => {
  swtpm = await Swtpm.start();
  tpm = new Tpm2Tools({ tcti: swtpm.tcti });
  scratch = await tempDir('thfc-tpm-test-');
  dir = scratch.dir;
});

afterAll(async () => {
  await swtpm?.stop();
  await scratch?.cleanup();
});

describe('parsePcrYaml', () => {
  it('reads tpm2_pcrread and tpm2_checkquote output, single- and double-digit PCRs', () => {
    const text = 'pcrs:\n  sha1:\n    0 : 0xAB\n    23: 0x18DAFB\n  sha256:\n    23: 0x90F4\nsig: 3044\n';
    expect(parsePcrYaml(text)).toEqual({ sha1: { 0: 'ab', 23: '18dafb' }, sha256: { 23: '90f4' } });
  });
});

describe('Tpm2Tools with swtpm', () => {
  it('measurements extended through the TPM read back as the log says, in both banks', async () => {
    expect(await tpm.activeBanks()).toEqual(expect.arrayContaining(['sha1', 'sha256']));
    const extender = new TpmExtender({ tpm });
    await extender.open(16);
    const log = new MeasurementLog({ extender }, { pcr: 16 });
    const idx = `sha256:${'ab'.repeat(32)}`;
    void log.measureIndex(idx, 'debian', undefined);
    for (let i = 0; i < 20; i++) void log.measureBlock(idx, i.toString(16).padStart(40, '0'));
    await log.settled();
    const read = await tpm.pcrRead(16, ['sha1', 'sha256']);
    expect({ sha1: read.sha1?.[16], sha256: read.sha256?.[16] }).toEqual(log.pcrValues());
    // The PCR now holds measurements: a second log cannot start there.
    await expect(new TpmExtender({ tpm }).open(16)).rejects.toThrow(/PCR 16 is not zero/);
  });

  it('an attestation key quotes a PCR; checkQuote accepts the right nonce and refuses another', async () => {
    const ak = await tpm.createAttestationKey(dir);
    const nonce = Buffer.from('0011223344', 'hex');
    const quote = await tpm.quote({ ak: ak.context, pcr: 23, banks: ['sha1', 'sha256'], nonce });
    expect(parseAttest(quote.message).nonce.equals(nonce)).toBe(true);
    const akPublicKeyPem = await readFile(ak.publicKey, 'utf8');
    expect(akPublicKeyPem).toMatch(/BEGIN PUBLIC KEY/);
    const values = await tpm.checkQuote({ akPublicKeyPem, quote, nonce });
    expect(values.sha256?.[23]).toBe('00'.repeat(32));
    await expect(tpm.checkQuote({ akPublicKeyPem, quote, nonce: Buffer.from('ff', 'hex') })).rejects.toThrow(
      /tpm2_checkquote failed/,
    );
  });

  it('no TPM at the TCTI: open() says so, and that the software log still works', async () => {
    const gone = new Tpm2Tools({ tcti: 'swtpm:host=127.0.0.1,port=1', timeoutMs: 10_000 });
    await expect(new TpmExtender({ tpm: gone }).open(23)).rejects.toThrow(
      /no TPM reachable through tpm2-tools\(swtpm:host=127\.0\.0\.1,port=1\) .*the software measurement log still works/,
    );
  });
});
