import { describe, expect, it } from 'vitest';
import { chooseDisplay, parseAccel, parseDiskBus, parseNet, parseVncDisplay, vmName } from '../src/vm-spec.js';

describe('chooseDisplay', () => {
  it('serial console when there is no graphical session', () => {
    expect(chooseDisplay({ graphical: false })).toEqual({ kind: 'serial' });
  });
  it('a window when there is one, unless --serial', () => {
    expect(chooseDisplay({ graphical: true })).toEqual({ kind: 'window', serial: false });
    expect(chooseDisplay({ graphical: true, serial: true })).toEqual({ kind: 'serial' });
  });
  it('--vnc wins, with the serial console too when asked', () => {
    expect(chooseDisplay({ graphical: false, vnc: ':1' })).toEqual({ kind: 'vnc', vnc: ':1', serial: false });
    expect(chooseDisplay({ graphical: true, vnc: '127.0.0.1:2', serial: true })).toEqual({
      kind: 'vnc',
      vnc: '127.0.0.1:2',
      serial: true,
    });
  });
});

describe('option parsers', () => {
  it('vnc displays', () => {
    expect(parseVncDisplay(':0')).toBe(':0');
    expect(parseVncDisplay('localhost:12')).toBe('localhost:12');
    for (const bad of ['1', ':', ':x', 'host', ':1;rm -rf /']) expect(() => parseVncDisplay(bad)).toThrow(/--vnc/);
  });
  it('accelerators, nets, buses', () => {
    expect(parseAccel('kvm')).toBe('kvm');
    expect(parseAccel('auto')).toBe('auto');
    expect(() => parseAccel('hax')).toThrow(/kvm, tcg or auto/);
    expect(parseNet('user')).toBe('user');
    expect(() => parseNet('tap')).toThrow(/user or none/);
    expect(parseDiskBus('ide')).toBe('ide');
    expect(() => parseDiskBus('scsi')).toThrow(/virtio or ide/);
  });
  it('VM names every engine accepts', () => {
    expect(vmName('debian-12.1_x')).toBe('thfc-debian-12.1_x');
    expect(vmName('a b/c"d')).toBe('thfc-a-b-c-d');
    expect(vmName('///')).toBe('thfc-guest');
  });
});
