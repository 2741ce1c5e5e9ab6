import { parseMountInfo } from '@thfc/store';
import { describe, expect, it } from 'vitest';
import { formatMountList, isMountStatus, thfcMountpoints } from '../src/mount-list.js';

const MOUNTINFO = [
  '23 1 0:41 / /srv/memfs rw,nosuid - fuse memfs rw,user_id=0',
  '24 1 0:42 / /srv/vm rw,nosuid,nodev - fuse.thfc thfc rw,user_id=0,group_id=0',
  '25 1 0:43 / /srv/with\\040space rw - fuse.thfc thfc rw',
  '26 1 0:44 / /srv/vm rw - fuse.thfc thfc rw',
  '27 1 8:1 / /home rw - ext4 /dev/sda1 rw',
].join('\n');

describe('mount-list', () => {
  it('finds httpstorged mounts by their fuse.thfc type only, once each, paths decoded', () => {
    expect(thfcMountpoints(parseMountInfo(MOUNTINFO))).toEqual(['/srv/vm', '/srv/with space']);
  });

  it('tells a mount status from other JSON', () => {
    expect(isMountStatus({ mountpoint: '/m', pid: 1, images: [], cache: { dir: null } })).toBe(true);
    expect(isMountStatus({ mountpoint: '/m', pid: '1', images: [] })).toBe(false);
    expect(isMountStatus(null)).toBe(false);
    expect(isMountStatus([])).toBe(false);
  });

  it('says when there is no mount, and names a stale one with its problem', () => {
    expect(formatMountList([])).toBe('no httpstorged mounts\n');
    expect(formatMountList([{ mountpoint: '/srv/vm', status: null, problem: 'stale: its daemon died' }])).toBe(
      '/srv/vm: stale: its daemon died\n',
    );
  });
});
