import { strict as assert } from 'node:assert';
import { looksLikeXlConfig } from '../../extension/xl-detect';

describe('xl configuration content detection (.cfg files)', () => {
  it('recognises a typical PV domain config', () => {
    const text = [
      '# PV guest',
      'name = "guest"',
      'kernel = "/usr/lib/grub-xen/grub-x86_64-xen.bin"',
      'memory = 256',
      'disk = [ "disk.img,raw,xvda,rw",',
      '         "cd.iso,raw,xvdb,r" ]',
      'vif = []',
    ].join('\n');
    assert.equal(looksLikeXlConfig(text), true);
  });
  it('recognises type = "pv" alone', () => {
    assert.equal(looksLikeXlConfig('type = "pv"\n'), true);
  });
  it('rejects a properties file with one name key', () => {
    assert.equal(looksLikeXlConfig('name = foo\n'), false);
  });
  it('rejects an ini file with sections', () => {
    assert.equal(looksLikeXlConfig('[core]\nname = x\nkernel = y\n'), false);
  });
  it('rejects Java-style properties with dotted keys', () => {
    assert.equal(looksLikeXlConfig('app.name = x\nkernel = y\n'), false);
  });
  it('rejects empty and comment-only files', () => {
    assert.equal(looksLikeXlConfig(''), false);
    assert.equal(looksLikeXlConfig('# nothing\n\n'), false);
  });
  it('accepts CRLF line ends', () => {
    assert.equal(looksLikeXlConfig('name = "a"\r\nmemory = 128\r\n'), true);
  });
});
