import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TpmError } from './errors.js';
import type { PcrBank } from './pcr-bank.js';

/**
 * The only importer of tpm2-tools (Debian `tpm2-tools`, 5.x). Every TPM
 * operation thfc needs is one or two tool runs; nothing here keeps TPM state
 * between calls. Transient objects are flushed after the commands that load
 * them, so a TPM reached without a resource manager (swtpm over TCP) does not
 * run out of object slots.
 */
export interface TpmOptions {
  /**
   * The TCTI: `swtpm:host=127.0.0.1,port=2321`, `device:/dev/tpmrm0`, `tabrmd`…
   * Default: tpm2-tools' own choice ($TPM2TOOLS_TCTI, then the kernel's
   * resource manager, then the device).
   */
  readonly tcti?: string | undefined;
  readonly timeoutMs?: number | undefined;
}

/** A PCR extend takes milliseconds; creating an RSA endorsement key on a hardware TPM takes seconds. Past 30 s it is hung. */
export const DEFAULT_TPM_TIMEOUT_MS = 30_000;

export type PcrValues = Partial<Record<string, Partial<Record<number, string>>>>;

export interface QuoteParts {
  /** TPMS_ATTEST, as signed. */
  readonly message: Buffer;
  /** TPMT_SIGNATURE. */
  readonly signature: Buffer;
  /** tpm2-tools' PCR values file (selection and values). */
  readonly pcrs: Buffer;
}

export interface AttestationKeyFiles {
  /** tpm2-tools context file of the AK (valid until the TPM restarts). */
  readonly context: string;
  /** The AK's public key, PEM: what a verifier is given to check quotes. */
  readonly publicKey: string;
  readonly name: string;
}

export class Tpm2Tools {
  constructor(private readonly options: TpmOptions = {}) {}

  toString(): string {
    return `tpm2-tools(${this.options.tcti ?? 'default TCTI'})`;
  }

  /** Banks with at least one PCR allocated, e.g. `['sha1', 'sha256']`. */
  async activeBanks(signal?: AbortSignal): Promise<string[]> {
    const out = await this.run('tpm2_getcap', ['pcrs'], signal);
    const banks: string[] = [];
    for (const m of out.matchAll(/^\s*-\s*([a-z0-9_]+)\s*:\s*\[([^\]]*)\]\s*$/gm)) {
      if ((m[2] as string).trim() !== '') banks.push(m[1] as string);
    }
    return banks;
  }

  async pcrRead(pcr: number, banks: readonly PcrBank[], signal?: AbortSignal): Promise<PcrValues> {
    return parsePcrYaml(await this.run('tpm2_pcrread', [banks.map((b) => `${b}:${pcr}`).join('+')], signal));
  }

  /** One tool run extends every digest set, in order. */
  async pcrExtend(
    pcr: number,
    digests: readonly Partial<Record<PcrBank, Uint8Array>>[],
    signal?: AbortSignal,
  ): Promise<void> {
    const args = digests.map(
      (d) =>
        `${pcr}:${Object.entries(d)
          .map(([bank, v]) => `${bank}=${Buffer.from(v).toString('hex')}`)
          .join(',')}`,
    );
    await this.run('tpm2_pcrextend', args, signal);
  }

  /**
   * Creates an endorsement key and, under it, an ECC P-256 attestation key
   * that signs with ECDSA/SHA-256, in `dir`. Provisioning and certifying an
   * AK for production (credential activation against the EK certificate) is
   * the platform's business; this is what tests and a single machine need.
   */
  async createAttestationKey(dir: string, signal?: AbortSignal): Promise<AttestationKeyFiles> {
    const files = { context: join(dir, 'ak.ctx'), publicKey: join(dir, 'ak.pub.pem'), name: join(dir, 'ak.name') };
    const ek = join(dir, 'ek.ctx');
    try {
      await this.run('tpm2_createek', ['-c', ek, '-G', 'rsa', '-u', join(dir, 'ek.pub')], signal);
      await this.run(
        'tpm2_createak',
        ['-C', ek, '-c', files.context, '-G', 'ecc', '-g', 'sha256', '-s', 'ecdsa'].concat([
          '-u',
          files.publicKey,
          '-f',
          'pem',
          '-n',
          files.name,
        ]),
        signal,
      );
    } finally {
      await this.flushTransient(signal);
    }
    return files;
  }

  /** Quotes `pcr` in `banks` with the AK (a context file or a persistent handle), binding `nonce`. */
  async quote(
    request: { ak: string; pcr: number; banks: readonly PcrBank[]; nonce: Uint8Array },
    signal?: AbortSignal,
  ): Promise<QuoteParts> {
    return this.withTemp(async (dir) => {
      const f = { m: join(dir, 'quote.msg'), s: join(dir, 'quote.sig'), o: join(dir, 'quote.pcrs') };
      try {
        const selection = request.banks.map((b) => `${b}:${request.pcr}`).join('+');
        const nonce = Buffer.from(request.nonce).toString('hex');
        await this.run(
          'tpm2_quote',
          ['-c', request.ak, '-l', selection, '-q', nonce, '-m', f.m, '-s', f.s, '-o', f.o, '-g', 'sha256'],
          signal,
        );
      } finally {
        await this.flushTransient(signal);
      }
      return { message: await readFile(f.m), signature: await readFile(f.s), pcrs: await readFile(f.o) };
    });
  }

  /**
   * tpm2_checkquote: the signature verifies with the AK public key, the nonce
   * is the one given, and the PCR values file hashes to the quoted digest.
   * Needs no TPM. Resolves to the quoted values; throws TpmError otherwise.
   */
  async checkQuote(
    request: { akPublicKeyPem: string; quote: QuoteParts; nonce: Uint8Array },
    signal?: AbortSignal,
  ): Promise<PcrValues> {
    return this.withTemp(async (dir) => {
      const f = { u: join(dir, 'ak.pub.pem'), m: join(dir, 'm'), s: join(dir, 's'), p: join(dir, 'p') };
      await writeFile(f.u, request.akPublicKeyPem);
      await writeFile(f.m, request.quote.message);
      await writeFile(f.s, request.quote.signature);
      await writeFile(f.p, request.quote.pcrs);
      const out = await this.run(
        'tpm2_checkquote',
        ['-u', f.u, '-m', f.m, '-s', f.s, '-f', f.p, '-g', 'sha256', '-q', Buffer.from(request.nonce).toString('hex')],
        signal,
        false,
      );
      return parsePcrYaml(out);
    });
  }

  private async flushTransient(signal?: AbortSignal): Promise<void> {
    await this.run('tpm2_flushcontext', ['-t'], signal).catch(() => {});
  }

  private async withTemp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
    const dir = await mkdtemp(join(tmpdir(), 'thfc-tpm-'));
    try {
      return await fn(dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** Runs one tool to completion and resolves to its stdout. Offline tools (checkquote) take no TCTI. */
  private run(tool: string, args: string[], signal?: AbortSignal, tcti = true): Promise<string> {
    const timeoutMs = this.options.timeoutMs ?? DEFAULT_TPM_TIMEOUT_MS;
    const timeout = AbortSignal.timeout(timeoutMs);
    const both = signal ? AbortSignal.any([signal, timeout]) : timeout;
    const argv = [...(tcti && this.options.tcti ? ['-T', this.options.tcti] : []), ...args];
    return new Promise((resolve, reject) => {
      const child = spawn(tool, argv, { stdio: ['ignore', 'pipe', 'pipe'], signal: both, killSignal: 'SIGKILL' });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c) => {
        stdout += c;
      });
      child.stderr.on('data', (c) => {
        stderr += c;
      });
      child.on('error', (e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT')
          reject(new TpmError(`${tool} not found: install tpm2-tools (Debian: apt install tpm2-tools)`));
        else if (signal?.aborted) reject(signal.reason);
        else if (timeout.aborted) reject(new TpmError(`${tool}: no answer within ${timeoutMs} ms`));
        else reject(new TpmError(`${tool}: ${e.message}`));
      });
      child.on('close', (code) => {
        if (code === 0) resolve(stdout);
        else if (code !== null) reject(new TpmError(`${tool} failed: ${summarise(stderr) || `exit ${code}`}`));
      });
    });
  }
}

/** The most telling line of tpm2-tools' stderr: its last ERROR line, without the source location. */
function summarise(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const errors = lines.filter((l) => l.startsWith('ERROR'));
  const pick = errors.find((l) => /tcti|connect|Failed to/i.test(l)) ?? errors.at(-1) ?? lines.at(-1) ?? '';
  return pick.replace(/^ERROR:\S*:\s*/, '').replace(/^ERROR:\s*/, '');
}

/** `  sha256:\n    23: 0x90F4…` (tpm2_pcrread, tpm2_checkquote) → { sha256: { 23: '90f4…' } }. */
export function parsePcrYaml(text: string): PcrValues {
  const out: PcrValues = {};
  let bank: string | undefined;
  for (const line of text.split('\n')) {
    const b = /^ {2}([a-z0-9_]+):\s*$/.exec(line);
    if (b) {
      bank = b[1] as string;
      out[bank] = {};
      continue;
    }
    const v = /^ {4}\s*(\d+)\s*:\s*0x([0-9A-Fa-f]+)\s*$/.exec(line);
    if (v && bank) (out[bank] as Record<number, string>)[Number(v[1])] = (v[2] as string).toLowerCase();
    else if (!/^\s/.test(line)) bank = undefined;
  }
  return out;
}
