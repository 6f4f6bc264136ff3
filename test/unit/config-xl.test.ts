import { strict as assert } from 'node:assert';
import {
  ConfigError,
  parseDiskSpec,
  parseVifSpec,
  parseXlConfig,
  parseXlConfigDetailed,
  validateDomainConfig,
} from '../../engine/xen/config';

const REALISTIC = `# Debian PV guest booted through PV GRUB
name = "debian-pv"
type = 'pv'
kernel = "grub-x86_64-xen.bin"   # relative to the file
memory = 512
maxmem = 512
vcpus = 2
uuid = "6d4a1a9c-8a53-4d7e-9a57-0f1c7d1e2f3a"
extra = "console=hvc0"
root = "/dev/xvda1 ro"
disk = [
    'format=raw, vdev=xvda, access=rw, target=images/debian.img',
    'phy:/dev/vg0/data,xvdb,w',
    '/srv/iso/tools.img,raw,xvdc,ro',
]
vif = [ 'mac=00:16:3E:12:34:56,bridge=xenbr0', 'bridge=xenbr1' ]
on_poweroff = "destroy"
on_reboot = 'restart'
on_crash = "preserve"
cpus = "0-3"; cpu_weight = 256
`;

function expectError(text: string, key: string, reason: RegExp): ConfigError {
  try {
    parseXlConfig(text, '/etc/xen');
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
    assert.equal(e.key, key, `wrong key in: ${e.message}`);
    assert.match(e.message, reason);
    assert.ok(e.message.includes(key), 'message names the key');
    return e;
  }
  assert.fail(`no ConfigError for key ${key}`);
}

const BASE = 'name = "g"\nkernel = "/k"\n';

describe('xl domain configuration', () => {
  it('parses a realistic configuration', () => {
    const { config: c, warnings } = parseXlConfigDetailed(REALISTIC, '/etc/xen');
    assert.equal(c.name, 'debian-pv');
    assert.equal(c.kernel, '/etc/xen/grub-x86_64-xen.bin');
    assert.equal(c.memory, 512);
    assert.equal(c.vcpus, 2);
    assert.equal(c.cmdline, 'root=/dev/xvda1 ro console=hvc0');
    assert.deepEqual(c.disks, [
      { target: '/etc/xen/images/debian.img', vdev: 'xvda', access: 'w', format: 'raw' },
      { target: '/dev/vg0/data', vdev: 'xvdb', access: 'w', format: 'raw' },
      { target: '/srv/iso/tools.img', vdev: 'xvdc', access: 'r', format: 'raw' },
    ]);
    assert.deepEqual(c.vifs, [{ mac: '00:16:3e:12:34:56', bridge: 'xenbr0' }, { bridge: 'xenbr1' }]);
    assert.equal(c.onPoweroff, 'destroy');
    assert.equal(c.onReboot, 'restart');
    assert.equal(c.onCrash, 'preserve');
    assert.deepEqual(warnings, []);
  });

  it('handles defaults, cmdline precedence, escapes, += and unknown keys', () => {
    const { config: c, warnings } = parseXlConfigDetailed(
      `${BASE}cmdline = "a\\tb \\x41\\101"\nextra = "ignored"\nfrobnicate = 1\nvif = ['bridge=br0']\nvif += ['bridge=br1']\nramdisk = 'initrd.gz'`,
      '/cfg',
    );
    assert.equal(c.memory, 128);
    assert.equal(c.vcpus, 1);
    assert.equal(c.cmdline, 'a\tb AA');
    assert.equal(c.ramdisk, '/cfg/initrd.gz');
    assert.equal(c.vifs.length, 2);
    assert.equal(c.onReboot, 'restart');
    assert.ok(warnings.some((w) => w.includes('frobnicate')));
    assert.ok(warnings.some((w) => w.includes('cmdline')));
  });

  it('accepts numbers written as strings and hex, and empty refused keys', () => {
    const c = parseXlConfig(`${BASE}memory = "256"\nvcpus = 0x2\npci = []\nbootloader = ""`, '/');
    assert.equal(c.memory, 256);
    assert.equal(c.vcpus, 2);
  });

  it('reports each malformed or unsupported key with a ConfigError naming it', () => {
    expectError('kernel = "/k"', 'name', /missing/);
    expectError('name = "g"', 'kernel', /missing/);
    expectError(`${BASE}type = "hvm"`, 'type', /only PV/);
    expectError(`${BASE}builder = "hvm"`, 'builder', /only PV/);
    expectError(`${BASE}memory = "lots"`, 'memory', /whole number/);
    expectError(`${BASE}memory = 0`, 'memory', /out of range/);
    expectError(`${BASE}memory = 100000`, 'memory', /out of range/);
    expectError(`${BASE}memory = 512\nmaxmem = 256`, 'maxmem', /below memory/);
    expectError(`${BASE}vcpus = [1]`, 'vcpus', /list/);
    expectError(`${BASE}vcpus = 2\nmaxvcpus = 4`, 'maxvcpus', /must equal vcpus/);
    expectError(`${BASE}on_crash = "coredump-destroy"`, 'on_crash', /not supported/);
    expectError(`${BASE}on_reboot = "rename-restart"`, 'on_reboot', /not supported/);
    expectError(`${BASE}on_poweroff = "explode"`, 'on_poweroff', /invalid action/);
    expectError(`${BASE}bootloader = "pygrub"`, 'bootloader', /not supported/);
    expectError(`${BASE}pci = ['01:00.0']`, 'pci', /not supported/);
    expectError(`${BASE}vfb = ['vnc=1']`, 'vfb', /not supported/);
    expectError(`${BASE}disk = ['/img,qcow2,xvda,w']`, 'disk', /qcow2.*not supported/);
    expectError(`${BASE}disk = ['/img,raw,xvda,rwx']`, 'disk', /invalid access/);
    expectError(`${BASE}disk = ['/img,raw,floppy,w']`, 'disk', /invalid vdev/);
    expectError(`${BASE}disk = ['/img,raw']`, 'disk', /no vdev/);
    expectError(`${BASE}disk = ['vdev=xvda']`, 'disk', /no target/);
    expectError(`${BASE}disk = ['/img,raw,hdc:cdrom,r']`, 'disk', /CD-ROM/);
    expectError(`${BASE}disk = ['/img,raw,xvda,w,script=block-iscsi']`, 'disk', /script/);
    expectError(`${BASE}disk = ['/a,raw,xvda,w', '/b,raw,xvda,w']`, 'disk', /used twice/);
    expectError(`${BASE}disk = [ 42 ]`, 'disk', /string/);
    expectError(`${BASE}vif = ['mac=00:16:3e:zz:00:01']`, 'vif', /invalid mac/);
    expectError(`${BASE}vif = ['mac=01:16:3e:00:00:01']`, 'vif', /multicast/);
    expectError(`${BASE}vif = ['colour=blue']`, 'vif', /unknown key/);
    expectError(`${BASE}cmdline = "${'x'.repeat(1100)}"`, 'cmdline', /longer than/);
  });

  it('reports syntax errors with the line number', () => {
    const e1 = expectError('name = "g"\nkernel = "/k\n', 'kernel', /unterminated string/);
    assert.equal(e1.line, 2);
    const e2 = expectError('name = "g"\nkernel "/k"\n', 'kernel', /expected "="/);
    assert.equal(e2.line, 2);
    const e3 = expectError('name = "g"\nkernel = "/k"\ndisk = [ "a",\n "b"\n', 'disk', /unterminated list/);
    assert.ok(e3.line !== undefined);
    expectError('name = "g"\nkernel = /k\n', 'kernel', /expected a value/);
    expectError('name = "g" junk\n', 'name', /unexpected/);
    expectError('= 3\n', '', /expected a key/);
    const e4 = expectError(`${BASE}\n\nmemory = "x"`, 'memory', /whole number/);
    assert.equal(e4.line, 5);
  });

  it('parses disk specs in their positional and key=value forms', () => {
    assert.deepEqual(parseDiskSpec('file:/x.img,xvda1,r'), {
      target: '/x.img',
      vdev: 'xvda1',
      access: 'r',
      format: 'raw',
    });
    assert.deepEqual(parseDiskSpec('/x.img,,xvdb'), {
      target: '/x.img',
      vdev: 'xvdb',
      access: 'w',
      format: 'raw',
    });
    assert.deepEqual(parseDiskSpec('vdev=xvdc, access=ro, target=/path,with,commas.img'), {
      target: '/path,with,commas.img',
      vdev: 'xvdc',
      access: 'r',
      format: 'raw',
    });
    assert.deepEqual(parseDiskSpec('x.img,raw,xvda,w', '/base'), {
      target: '/base/x.img',
      vdev: 'xvda',
      access: 'w',
      format: 'raw',
    });
    assert.deepEqual(parseVifSpec('bridge=xenbr0, ip=10.0.0.2, script=vif-bridge'), { bridge: 'xenbr0' });
  });

  it('validates launch-attribute objects', () => {
    const c = validateDomainConfig(
      {
        name: 'g',
        kernel: 'k.elf',
        memory: 64,
        disks: [{ target: 'd.img', vdev: 'xvda', access: 'r' }, 'e.img,raw,xvdb,w'],
        vifs: [{ mac: '00:16:3e:00:00:01' }],
        consoleIoWrites: true,
        type: 'pvscope',
        request: 'launch',
      },
      { baseDir: '/ws', ignoreKeys: ['type', 'request'] },
    );
    assert.equal(c.kernel, '/ws/k.elf');
    assert.equal(c.disks[0].target, '/ws/d.img');
    assert.equal(c.disks[1].vdev, 'xvdb');
    assert.equal(c.consoleIoWrites, true);
    const bytes = validateDomainConfig({ name: 'g', kernel: new Uint8Array([0x7f, 0x45]) });
    assert.ok(bytes.kernel instanceof Uint8Array);
    const bad = (o: unknown, key: string) =>
      assert.throws(
        () => validateDomainConfig(o),
        (e: unknown) => e instanceof ConfigError && e.key === key,
      );
    bad(null, '');
    bad([], '');
    bad({ kernel: '/k' }, 'name');
    bad({ name: 'a/b', kernel: '/k' }, 'name');
    bad({ name: 'g' }, 'kernel');
    bad({ name: 'g', kernel: 3 }, 'kernel');
    bad({ name: 'g', kernel: new Uint8Array(0) }, 'kernel');
    bad({ name: 'g', kernel: '/k', memory: 1.5 }, 'memory');
    bad({ name: 'g', kernel: '/k', vcpus: 0 }, 'vcpus');
    bad({ name: 'g', kernel: '/k', disks: 'xvda' }, 'disks');
    bad({ name: 'g', kernel: '/k', disks: [{ target: '/a', vdev: 'xvda', access: 'x' }] }, 'disks');
    bad({ name: 'g', kernel: '/k', disks: [{ target: '/a', vdev: 'xvda', extra: 1 }] }, 'disks');
    bad({ name: 'g', kernel: '/k', vifs: [{ mac: 'nope' }] }, 'vifs');
    bad({ name: 'g', kernel: '/k', onCrash: 'coredump-destroy' }, 'onCrash');
    bad({ name: 'g', kernel: '/k', consoleIoWrites: 'yes' }, 'consoleIoWrites');
    bad({ name: 'g', kernel: '/k', tscPerInstruction: -1 }, 'tscPerInstruction');
    bad({ name: 'g', kernel: '/k', frobnicate: 1 }, 'frobnicate');
  });
});
