import { createHash } from 'node:crypto';
import { isBlockId } from './block-id.js';
import { isImageName } from './block-path.js';
import { IndexFormatError, InvalidArgumentError } from './errors.js';
import { type ImageIndex, isIndexDigest } from './image-index.js';
import { type InlineSignature, parseSignatureLine } from './signature-line.js';

/**
 * Boot profile format v1: the blocks a guest touched while booting, in the
 * order it first touched them, bound to one index by its digest. Published as
 * `STORE/NAME.profile` beside `NAME.idx` and signed like an index.
 *
 *   thfc-profile 1
 *   image debian
 *   index sha256:<64 hex>     the digest of the index it was recorded against
 *   blocks 312
 *   <block id>                one line per block, first touch first, no repeats
 *   end sha256:<64 hex>       digest of every byte before this line
 *   sig ed25519 …             zero or more, as in the index
 *
 * A profile is only a hint about order: a client replays it only after
 * checking it names the index it mounted and that every id is a block of
 * that index (checkProfile), so a profile can never make a client fetch
 * anything its index does not reference.
 */
export const PROFILE_MAGIC = 'thfc-profile';
export const PROFILE_VERSION = 1;
/** Profiles past this many lines are refused: a boot touches thousands of blocks, not millions. */
export const MAX_PROFILE_BLOCKS = 1 << 22;
/**
 * The most bytes of a profile file a reader takes (httpstorged, thfc-mirror's
 * upstream fetch): past this, it is refused unread. A real one is tens of KB.
 */
export const MAX_PROFILE_BYTES = 64 * 1024 * 1024;

export interface BootProfile {
  readonly image: string;
  readonly index: string;
  readonly blocks: readonly string[];
  readonly digest: string;
  readonly signatures: readonly InlineSignature[];
  readonly bytes: Uint8Array;
}

export function encodeProfile(image: string, indexDigest: string, blocks: readonly string[]): Uint8Array {
  if (!isImageName(image)) throw new InvalidArgumentError(`bad image name "${image}"`);
  if (!isIndexDigest(indexDigest)) throw new InvalidArgumentError(`bad index digest "${indexDigest}"`);
  const seen = new Set<string>();
  for (const id of blocks) {
    if (!isBlockId(id)) throw new InvalidArgumentError(`not a block id: "${id}"`);
    if (seen.has(id)) throw new InvalidArgumentError(`block ${id} listed twice`);
    seen.add(id);
  }
  const body = `${PROFILE_MAGIC} ${PROFILE_VERSION}\nimage ${image}\nindex ${indexDigest}\nblocks ${blocks.length}\n${blocks.map((b) => `${b}\n`).join('')}`;
  return Buffer.from(`${body}end sha256:${createHash('sha256').update(body).digest('hex')}\n`);
}

/** Strict decoder: every error names the line and field, like the index decoder's. */
export function decodeProfile(bytes: Uint8Array, source = 'profile'): BootProfile {
  const text = Buffer.from(bytes).toString('latin1');
  if (!text.endsWith('\n'))
    throw new IndexFormatError('truncated: last line has no newline', undefined, undefined, source);
  const lines = text.slice(0, -1).split('\n');
  const fail = (why: string, line: number, field?: string): never => {
    throw new IndexFormatError(why, line, field, source);
  };
  const header = (i: number, key: string): string => {
    const l = lines[i];
    if (l === undefined) return fail('truncated in the header', i + 1);
    if (!l.startsWith(`${key} `)) return fail(`expected "${key} …"`, i + 1, key);
    return l.slice(key.length + 1);
  };
  if (header(0, PROFILE_MAGIC) !== String(PROFILE_VERSION))
    fail(`not a v${PROFILE_VERSION} boot profile`, 1, 'version');
  const image = header(1, 'image');
  if (!isImageName(image)) fail(`bad image name "${image.slice(0, 40)}"`, 2, 'image');
  const index = header(2, 'index');
  if (!isIndexDigest(index)) fail('expected sha256:<64 hex>', 3, 'index');
  const countText = header(3, 'blocks');
  if (!/^(0|[1-9]\d{0,8})$/.test(countText)) fail(`"${countText.slice(0, 20)}" is not a count`, 4, 'blocks');
  const count = Number(countText);
  if (count > MAX_PROFILE_BLOCKS) fail(`more than ${MAX_PROFILE_BLOCKS} blocks`, 4, 'blocks');
  if (lines.length < 4 + count + 1)
    fail(`truncated: fewer than the ${count} block lines declared, or no end line`, lines.length + 1, 'end');
  const blocks: string[] = [];
  const seen = new Set<string>();
  for (let i = 4; i < 4 + count; i++) {
    const id = lines[i] as string;
    if (!isBlockId(id)) fail(`"${id.slice(0, 80)}" is not a block id`, i + 1, 'id');
    if (seen.has(id)) fail(`block ${id} listed twice`, i + 1, 'id');
    seen.add(id);
    blocks.push(id);
  }
  const endIndex = 4 + count;
  const bodyLength = lines.slice(0, endIndex).reduce((n, l) => n + l.length + 1, 0);
  const digest = `sha256:${createHash('sha256').update(Buffer.from(bytes).subarray(0, bodyLength)).digest('hex')}`;
  const end = lines[endIndex] as string;
  if (end !== `end ${digest}`) {
    fail(
      end.startsWith('end ') ? 'digest does not match the profile body (changed or damaged)' : 'expected the end line',
      endIndex + 1,
      'end',
    );
  }
  const signatures: InlineSignature[] = [];
  let offset = bodyLength + end.length + 1;
  for (let i = endIndex + 1; i < lines.length; i++) {
    const l = lines[i] as string;
    signatures.push(parseSignatureLine(l, offset, i + 1, (why, field) => fail(why, i + 1, field)));
    offset += l.length + 1;
  }
  return { image, index, blocks, digest, signatures, bytes };
}

/**
 * The rule that keeps a profile harmless: it must name the mounted index and
 * list only blocks that index references. Returns the refs in profile order.
 */
export function checkProfile(profile: BootProfile, index: ImageIndex, indexDigest: string): { id: string }[] {
  if (profile.index !== indexDigest) {
    throw new InvalidArgumentError(`profile was recorded for index ${profile.index}, not the mounted ${indexDigest}`);
  }
  if (profile.image !== index.header.name) {
    throw new InvalidArgumentError(`profile is for image ${profile.image}, not ${index.header.name}`);
  }
  const foreign = profile.blocks.filter((id) => index.findBlock(id) < 0);
  if (foreign.length) {
    throw new InvalidArgumentError(
      `profile lists ${foreign.length} blocks the index does not reference (first: ${foreign[0]}); refusing it`,
    );
  }
  return profile.blocks.map((id) => ({ id }));
}
