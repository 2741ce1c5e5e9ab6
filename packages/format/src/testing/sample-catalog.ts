/**
 * A version 1 catalog document (as JSON.parse gives it) with one entry of
 * every boot key but diskBus and one bare entry, for tests of the codec and
 * of its readers.
 */
export const SAMPLE_CATALOG = {
  format: 'thfc-catalog',
  version: 1,
  images: [
    {
      name: 'debian',
      index: 'debian.idx',
      description: 'Debian 12',
      boot: {
        mem: 512,
        cpus: 2,
        kernel: 'boot/vmlinux',
        initrd: 'boot/initrd.gz',
        append: 'root=/dev/vda',
        net: 'user',
      },
    },
    { name: 'bare', index: 'https://other.example/x/bare.idx' },
  ],
};
