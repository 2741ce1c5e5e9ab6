import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parseNetworks, preferredRegions } from '@thfc/mirror';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { node, ROOT, tempDir } from './support/processes.js';

/**
 * docker/ cannot be run here (no Docker engine, no compose plugin), so this
 * checks what can be checked without one: compose.yaml parses, has the
 * fleet the issue asks for, wires its services to each other consistently,
 * and every command in it is a real thfc CLI invocation whose flags exist.
 */

/** What compose.yaml holds, as the yaml package reads it. */
type YamlValue = string | number | boolean | null | YamlValue[] | { [key: string]: YamlValue };

type Service = {
  build?: { context: string; dockerfile: string };
  depends_on?: Record<string, { condition: string }>;
  image?: string;
  entrypoint?: string[];
  command?: string[];
  volumes?: string[];
  devices?: string[];
  cap_add?: string[];
  networks?: YamlValue;
};

const DOCKER = join(ROOT, 'docker');
const CLIS: Record<string, string> = {
  'thfc-mirror': join(ROOT, 'packages/mirror/dist/cli.js'),
  'thfc-pack': join(ROOT, 'packages/packer/dist/cli.js'),
  httpstorged: join(ROOT, 'packages/blockfs/dist/cli.js'),
};
/** Subcommands per program; httpstorged's mount command has none. */
const SUBCOMMANDS: Record<string, boolean> = { 'thfc-mirror': true, 'thfc-pack': true, httpstorged: false };

async function compose(): Promise<{ services: Record<string, Service>; root: Record<string, YamlValue> }> {
  // Strict: a duplicate key or anything outside YAML 1.2 is an error, not a silent last-one-wins.
  const root = parseYaml(await readFile(join(DOCKER, 'compose.yaml'), 'utf8'), { strict: true, uniqueKeys: true });
  return { services: root.services as unknown as Record<string, Service>, root };
}

/** The service that builds the image a service runs: itself, or the one whose build is tagged with its image. */
function builderOf(service: Service, services: Record<string, Service>): Service | undefined {
  if (service.build) return service;
  return Object.values(services).find((s) => s.build && s.image === service.image);
}

/** The program a service runs: its entrypoint, or the ENTRYPOINT of the Dockerfile its image is built from. */
async function program(service: Service, services: Record<string, Service>): Promise<string | undefined> {
  if (service.entrypoint) return service.entrypoint[0];
  const build = builderOf(service, services)?.build;
  if (!build) return undefined;
  const dockerfile = await readFile(join(DOCKER, build.context, build.dockerfile), 'utf8');
  const entry = /^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)?.[1];
  return entry ? (JSON.parse(entry) as string[])[0] : undefined;
}

const flagsOf = (args: readonly string[]) => args.filter((a) => a.startsWith('-'));
const argAfter = (args: readonly string[] | undefined, flag: string) => args?.[args.indexOf(flag) + 1];

describe('docker/', () => {
  it('compose.yaml parses and describes the fleet: redis, DNS-Balance, three mirrors in two regions, a client', async () => {
    const { services, root } = await compose();
    expect(Object.keys(root).sort()).toEqual(['name', 'networks', 'services', 'volumes']);
    expect(services.redis?.command).toEqual(['redis-server', '--save', '', '--appendonly', 'no']);
    const serving = Object.entries(services).filter(([, s]) => s.command?.[0] === 'serve');
    expect(serving).toHaveLength(3);
    const regions = serving.map(([, s]) => argAfter(s.command, '--region'));
    expect(new Set(regions).size).toBe(2);
    // One origin; the others fill themselves: pull-through (--upstream) or a sync --watch beside them.
    const upstream = serving.filter(([, s]) => s.command?.includes('--upstream'));
    const syncs = Object.values(services).filter((s) => s.command?.[0] === 'sync' && s.command.includes('--watch'));
    expect(upstream.length + syncs.length).toBe(2);
    expect(services.dns?.command?.[0]).toBe('dns');
    expect(services.client?.command).toContain('--pool');
    expect(services.client?.devices).toEqual(['/dev/fuse']);
    expect(services.client?.cap_add).toEqual(['SYS_ADMIN']);
  });

  it('services point at each other consistently', async () => {
    const { services } = await compose();
    const names = new Set(Object.keys(services));
    const hostOf = (url: string) => new URL(url).hostname;
    for (const [name, s] of Object.entries(services)) {
      const c = s.command ?? [];
      if (c[0] === 'serve') expect(hostOf(argAfter(c, '--advertise') as string), name).toBe(name);
      for (const flag of ['--upstream', '--redis']) {
        if (c.includes(flag)) expect(names.has(hostOf(argAfter(c, flag) as string)), `${name} ${flag}`).toBe(true);
      }
      if (c[0] === 'sync') expect(names.has(hostOf(c[1] as string)), name).toBe(true);
    }
    const zone = argAfter(services.dns?.command, '--zone');
    expect(argAfter(services.client?.command, '--pool')).toBe(zone);
    const dnsPort = (argAfter(services.dns?.command, '--listen') as string).split(':')[1];
    expect(argAfter(services.client?.command, '--dns')).toBe(`dns:${dnsPort}`);
  });

  it('the networks file the DNS server reads parses, and sends the client to the region it names', async () => {
    const { services } = await compose();
    const inside = argAfter(services.dns?.command, '--networks') as string;
    const mount = services.dns?.volumes?.find((v) => v.split(':')[1] === inside) as string;
    const networks = parseNetworks(await readFile(join(DOCKER, mount.split(':')[0] as string), 'utf8'));
    const clientNet = services.client?.networks as { thfc: { ipv4_address: string } };
    const { matched, regions } = preferredRegions(networks, clientNet.thfc.ipv4_address);
    expect(matched).toBe(`${clientNet.thfc.ipv4_address}/32`);
    expect(regions[0]).toBe('us');
  });

  it('every build names a Dockerfile that exists, on Debian 12 with Node 20, linking the programs it runs', async () => {
    const { services } = await compose();
    for (const [name, s] of Object.entries(services)) {
      if (!s.build) continue;
      const path = join(DOCKER, s.build.context, s.build.dockerfile);
      expect(existsSync(path), `${name}: ${path}`).toBe(true);
      const text = await readFile(path, 'utf8');
      expect(text).toMatch(/^FROM node:20-bookworm-slim$/m);
      const prog = (await program(s, services)) as string;
      expect(Object.keys(CLIS), name).toContain(prog);
      // Linked to the package's installed entry (package.json `bin`), as npm would link it.
      const pkgDir = dirname(dirname(CLIS[prog] as string));
      const bin = JSON.parse(await readFile(join(pkgDir, 'package.json'), 'utf8')).bin[prog] as string;
      expect(text, `${name}: ${prog} linked`).toContain(
        `ln -s /opt/thfc/${join(pkgDir, bin).slice(ROOT.length).replace(/^\//, '')} /usr/local/bin/${prog}`,
      );
    }
  });

  for (const prog of Object.keys(CLIS)) {
    it(`every ${prog} command in compose.yaml is a real invocation whose flags exist`, async () => {
      const { services } = await compose();
      let checked = 0;
      for (const [name, s] of Object.entries(services)) {
        if ((await program(s, services)) !== prog || !s.command) continue;
        const sub = SUBCOMMANDS[prog] ? [s.command[0] as string] : [];
        const help = await node(CLIS[prog] as string, [...sub, '--help'], { timeoutMs: 20_000 });
        expect(help.code, `${name}: ${prog} ${sub.join(' ')} --help: ${help.stderr}`).toBe(0);
        s.command.forEach((arg, i) => {
          if (!arg.startsWith('-')) return;
          const line = help.stdout.split('\n').find((l) => new RegExp(`(^|[\\s,])${arg}([\\s,=]|$)`).test(l));
          expect(line, `${name}: ${prog} ${sub.join(' ')} has ${arg}`).toBeDefined();
          // An option documented with <value> must be given one.
          if (new RegExp(`${arg} <`).test(line ?? '')) {
            const value = s.command?.[i + 1];
            expect(value !== undefined && !value.startsWith('-'), `${name}: ${arg} needs a value`).toBe(true);
          }
        });
        checked++;
      }
      expect(checked).toBeGreaterThan(0);
    });
  }

  it('one mirror image is built once, by one service, and every other mirror-side service reuses its tag', async () => {
    const { services } = await compose();
    const builders = Object.entries(services).filter(([, s]) => s.build?.dockerfile === 'docker/Dockerfile.mirror');
    expect(builders.map(([n]) => n)).toEqual(['publish']);
    const tag = builders[0]?.[1].image as string;
    expect(tag).toMatch(/^[a-z0-9/]+:[a-z0-9.]+$/);
    const mirrorSide = Object.entries(services).filter(([, s]) =>
      ['serve', 'sync', 'dns'].includes(s.command?.[0] ?? ''),
    );
    expect(mirrorSide).toHaveLength(5);
    for (const [name, s] of mirrorSide) {
      expect(s.image, name).toBe(tag);
      expect(s.build, name).toBeUndefined();
    }
  });

  it('a compose service writes the sample image that publish packs, and publish waits for it', async () => {
    const { services } = await compose();
    const sample = services.sample as Service;
    const script = sample.volumes?.find((v) => v.endsWith(':ro') && v.includes('.mjs'))?.split(':') as string[];
    expect(sample.entrypoint).toEqual(['node', script[1]]);
    expect(argAfter(services.publish?.command, 'pack')).toBe(sample.command?.[0]);
    expect(services.publish?.depends_on?.sample).toEqual({ condition: 'service_completed_successfully' });
    const { dir, cleanup } = await tempDir('thfc-sample-');
    try {
      const img = join(dir, 'images', 'sample.img');
      const made = await node(join(DOCKER, script[0] as string), [img, '4']);
      expect(made.code, made.stderr).toBe(0);
      expect((await stat(img)).size).toBe(4 * 1024 * 1024);
      const packed = await node(CLIS['thfc-pack'] as string, ['pack', img, '--store', join(dir, 'store'), '--json']);
      expect(packed.code, packed.stderr).toBe(0);
      expect(JSON.parse(packed.stdout).zeroBlocks).toBeGreaterThan(0);
      const again = await node(join(DOCKER, script[0] as string), [img, '8']);
      expect(again.stdout).toContain('keeping');
      expect((await stat(img)).size).toBe(4 * 1024 * 1024);
    } finally {
      await cleanup();
    }
  });

  it('each Dockerfile copies every workspace manifest before npm ci, and .dockerignore keeps the context small', async () => {
    const root = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { workspaces: string[] };
    for (const f of ['Dockerfile.mirror', 'Dockerfile.mount']) {
      const text = await readFile(join(DOCKER, f), 'utf8');
      const ci = text.indexOf('RUN npm ci');
      for (const w of root.workspaces) {
        const copy = text.indexOf(`COPY ${w}/package.json ${w}/`);
        expect(copy, `${f} copies ${w}/package.json`).toBeGreaterThan(0);
        expect(copy, `${f}: ${w}/package.json before npm ci`).toBeLessThan(ci);
      }
    }
    const ignored = (await readFile(join(ROOT, '.dockerignore'), 'utf8')).split('\n');
    for (const p of ['.git', '**/node_modules', '**/dist', '.demo', '.bench']) expect(ignored).toContain(p);
  });

  it('the mirror and DNS commands use the flags test/dns-balance.test.ts runs them with', async () => {
    const { services } = await compose();
    expect(flagsOf(services['mirror-jp1']?.command ?? [])).toEqual(['--listen', '--region', '--advertise', '--redis']);
    expect(flagsOf(services.dns?.command ?? [])).toEqual(['--zone', '--listen', '--redis', '--networks']);
    expect(flagsOf(services.client?.command ?? [])).toEqual(['-f', '--pool', '--dns', '--cache']);
  });
});
