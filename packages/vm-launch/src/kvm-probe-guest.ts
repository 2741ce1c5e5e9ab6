/**
 * The KVM probe guest: a 512-byte boot sector assembled from kvm-probe-guest.S
 * (the test re-assembles that file and compares). It enters long mode and runs
 * what broken KVMs fail at (64-bit exception delivery, cmpxchg16b, xsave), prints
 * its progress on COM1 and ends with ` OK` when everything ran.
 */

/** Bump when the bytes change, so cached probe answers from the old guest are not trusted. */
export const PROBE_GUEST_REVISION = 1;

/** What the guest prints on COM1 when every step ran. */
export const PROBE_OK = ' OK';
/** The words it prints as it gets through each step; the last one seen says where a failing KVM stopped. */
export const PROBE_STEPS = ['real', 'long', 'int3', 'cx16', 'xsave'] as const;

const CODE_HEX =
  'fa31c08ed88ec08ed0bc007cbeb87de86400bf0010b9001831c0f3ab66c70600100320000066c70600200330000066c7' +
  '06003083000000660f0116687d0f20e0660d200200000f22e066b8001000000f22d866b9800000c00f32660d00010000' +
  '0f300f20c0660d010000800f22c066ea827c00000800baf803ac84c07403eeebf8c366b810008ed88ec08ed0bc007c00' +
  '00becd7d0000e8930000000f011c25ae7d0000ccbed37d0000e880000000b8010000000fa289cd0fbae50d731f31c031' +
  'd2bb0100000031c9f0480fc70c25407d0000bed97d0000e8520000000fbae51a73380f20e00d000004000f22e031c9b8' +
  '0300000031d20f01d1b80300000031d20fae2425005000000fae2c2500500000bedf7d0000e814000000bee67d0000e8' +
  '0a00000066baf40031c0eff4ebfd66baf803ac84c07403eeebf8c348cf0f1f0000000000000000000000000000000000' +
  '0000000000000000ffff0000009aaf00ffff00000092cf001700507d0000000000000000000000000000000000000000' +
  '0000000000000000000000000000000000000000000000000000000000003b7d0800008e000000000000000000003f00' +
  '6e7d000000000000746866632d6b766d2d70726f62653a207265616c00206c6f6e670020696e74330020637831360020' +
  '787361766500204f4b0a';

/** SeaBIOS boots virtio disks of at least 1 MiB (a 512-byte one is skipped); the rest is zeros (a sparse file). */
export const PROBE_DISK_BYTES = 1024 * 1024;

/** The 512-byte boot sector: the code, zero padding, and the 0x55 0xAA signature. */
export function probeBootSector(): Uint8Array {
  const sector = new Uint8Array(512);
  sector.set(Buffer.from(CODE_HEX, 'hex'));
  sector[510] = 0x55;
  sector[511] = 0xaa;
  return sector;
}
