import { strict as assert } from 'node:assert';
import { MachineMemory } from '../../engine/memory/machine-memory';

describe('MachineMemory', () => {
  it('maps MFNs to buffer offsets with a base', () => {
    const m = new MachineMemory(4, 0x100);
    assert.equal(m.mfnToOffset(0x100), 0);
    assert.equal(m.mfnToOffset(0x103), 3 * 4096);
    assert.equal(m.mfnToOffset(0x104), -1);
    assert.equal(m.mfnToOffset(0xff), -1);
    assert.equal(m.maddrToOffset(0x101 * 4096 + 5), 4096 + 5);
  });
  it('calls onCodeWrite for frames holding decoded code', () => {
    const m = new MachineMemory(2);
    const hits: number[] = [];
    m.onCodeWrite = (f) => hits.push(f);
    m.codeFrames[1] = 1;
    m.write32(0, 1);
    m.write32(4094, 0xdeadbeef); // straddles into frame 1
    assert.deepEqual(hits, [1]);
    assert.equal(m.read8(4097), 0xde);
    assert.equal(m.read32(4094), 0xdeadbeef);
  });
  it('rejects bad sizes', () => {
    assert.throws(() => new MachineMemory(0), RangeError);
  });
});
