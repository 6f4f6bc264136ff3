import { strict as assert } from 'node:assert';
import { RingClient, type Msg } from '../helpers/xs-ring-client';
import {
  Xenstored,
  XS_DIRECTORY,
  XS_DIRECTORY_PART,
  XS_ERROR,
  XS_GET_DOMAIN_PATH,
  XS_GET_PERMS,
  XS_INTRODUCE,
  XS_CONTROL,
  XS_MKDIR,
  XS_READ,
  XS_RESET_WATCHES,
  XS_RM,
  XS_SET_PERMS,
  XS_TRANSACTION_END,
  XS_TRANSACTION_START,
  XS_UNWATCH,
  XS_WATCH,
  XS_WATCH_EVENT,
  XS_WRITE,
  XS_RING_CONNECTION,
  XS_RING_ERROR,
  XS_RING_REQ_CONS,
  XS_RING_REQ_PROD,
  XS_RING_RSP_CONS,
  XS_RING_RSP_PROD,
  XS_RING_SERVER_FEATURES,
  XENSTORE_ERROR_PROTO,
  XENSTORE_ERROR_RINGIDX,
} from '../../engine/dom0/xenstored';

const enc = new TextEncoder();
const dec = new TextDecoder();

function makeStore(): Xenstored {
  const xs = new Xenstored();
  xs.introduceDomain(1, {
    name: 'guest',
    memoryKiB: 131072,
    vcpus: 2,
    storeMfn: 123,
    storePort: 1,
    consoleMfn: 124,
    consolePort: 2,
  });
  return xs;
}

function isError(m: Msg, name: string): void {
  assert.equal(m.type, XS_ERROR, `expected error ${name}, got type ${m.type} "${m.text}"`);
  assert.equal(m.text, `${name}\0`);
}

describe('dom0 xenstored', () => {
  it('creates the standard tree of a domain with xl permissions', () => {
    const xs = makeStore();
    assert.equal(xs.read('/local/domain/1/name'), 'guest');
    assert.equal(xs.read('/local/domain/1/domid'), '1');
    assert.equal(xs.read('/local/domain/1/memory/target'), '131072');
    assert.equal(xs.read('/local/domain/1/store/ring-ref'), '123');
    assert.equal(xs.read('/local/domain/1/store/port'), '1');
    assert.equal(xs.read('/local/domain/1/console/port'), '2');
    assert.equal(xs.read('/local/domain/1/cpu/1/availability'), 'online');
    assert.equal(xs.read('/local/domain/1/control/platform-feature-xs_reset_watches'), '1');
    assert.deepEqual(xs.getPerms('/local/domain/1'), ['n0', 'r1']);
    assert.deepEqual(xs.getPerms('/local/domain/1/control/shutdown'), ['n1']);
    assert.deepEqual(xs.getPerms('/local/domain/1/data'), ['n1']);
    assert.deepEqual(xs.getPerms('/local/domain/1/name'), ['n0', 'r1']);
    assert.deepEqual(xs.getPerms('/local/domain/1/console'), ['n1', 'r0']);
    const vm = xs.read('/local/domain/1/vm')!;
    assert.match(vm, /^\/vm\/[0-9a-f-]{36}$/);
    assert.equal(xs.read(`${vm}/name`), 'guest');
    const t = xs.tree('/local/domain/1')!;
    assert.ok(t.children.some((c) => c.path === '/local/domain/1/control'));
  });

  it('sets server features and answers READ/WRITE/MKDIR/DIRECTORY/RM with relative and absolute paths', () => {
    const c = new RingClient(makeStore());
    assert.equal(c.u32(XS_RING_SERVER_FEATURES) & 3, 3);
    const w = c.req(XS_WRITE, 'data/foo\0bar');
    assert.equal(w.type, XS_WRITE);
    assert.equal(w.text, 'OK\0');
    assert.equal(c.xs.read('/local/domain/1/data/foo'), 'bar');
    const r = c.req(XS_READ, '/local/domain/1/data/foo\0');
    assert.equal(r.type, XS_READ);
    assert.equal(r.text, 'bar'); // no NUL
    assert.equal(c.req(XS_MKDIR, 'data/dir/sub\0').text, 'OK\0');
    assert.equal(c.req(XS_WRITE, 'data/dir/x\0').text, 'OK\0'); // empty value
    const d = c.req(XS_DIRECTORY, 'data/dir\0');
    assert.equal(d.type, XS_DIRECTORY);
    assert.equal(d.text, 'sub\0x\0');
    const empty = c.req(XS_DIRECTORY, 'data/dir/sub\0');
    assert.equal(empty.body.length, 0);
    assert.equal(c.req(XS_RM, 'data/dir\0').text, 'OK\0');
    isError(c.req(XS_READ, 'data/dir/x\0'), 'ENOENT');
    assert.equal(c.xs.read('/local/domain/1/data/dir'), undefined);
    // RM of a missing node whose parent exists is fine; deeper is ENOENT.
    assert.equal(c.req(XS_RM, 'data/nothing\0').text, 'OK\0');
    isError(c.req(XS_RM, 'data/no/such\0'), 'ENOENT');
    // Binary values survive.
    const bin = new Uint8Array([...enc.encode('data/bin\0'), 0, 1, 2, 255]);
    assert.equal(c.req(XS_WRITE, bin).text, 'OK\0');
    assert.deepEqual([...c.req(XS_READ, 'data/bin\0').body], [0, 1, 2, 255]);
  });

  it('reports each guest request to onTrace', () => {
    const xs = makeStore();
    const lines: string[] = [];
    xs.onTrace = (domid, line) => lines.push(`d${domid} ${line}`);
    const c = new RingClient(xs);
    c.req(XS_WRITE, 'data/x\0v\x01');
    c.req(XS_READ, 'nope\0');
    assert.deepEqual(lines, ['d1 WRITE data/x|v\\x01 -> OK|', 'd1 READ nope| -> ENOENT']);
  });

  it('echoes req_id and tx_id and answers GET_DOMAIN_PATH', () => {
    const c = new RingClient(makeStore());
    c.putRaw(c.encode(XS_GET_DOMAIN_PATH, '7\0', 0, 0xdeadbeef));
    c.conn.kick();
    const [m] = c.take();
    assert.equal(m.reqId, 0xdeadbeef);
    assert.equal(m.type, XS_GET_DOMAIN_PATH);
    assert.equal(m.text, '/local/domain/7\0');
  });

  it('rejects bad paths and malformed payloads with EINVAL', () => {
    const c = new RingClient(makeStore());
    isError(c.req(XS_READ, 'data/a b\0'), 'EINVAL');
    isError(c.req(XS_READ, 'data//x\0'), 'EINVAL');
    isError(c.req(XS_READ, 'data/x/\0'), 'EINVAL');
    isError(c.req(XS_READ, '@introduceDomain\0'), 'EINVAL');
    isError(c.req(XS_READ, 'data/x'), 'EINVAL'); // no NUL
    isError(c.req(XS_READ, 'data/x\0extra\0'), 'EINVAL'); // two args
    isError(c.req(XS_WRITE, 'no-nul-at-all'), 'EINVAL');
    isError(c.req(XS_WRITE, `data/${'a'.repeat(2049)}\0v`), 'EINVAL');
    assert.equal(c.req(XS_WRITE, `data/${'a'.repeat(2000)}\0v`).text, 'OK\0');
  });

  it('answers unknown and server-only types with ENOSYS and privileged ones with EACCES', () => {
    const c = new RingClient(makeStore());
    isError(c.req(999, ''), 'ENOSYS');
    isError(c.req(XS_WATCH_EVENT, 'x\0t\0'), 'ENOSYS');
    isError(c.req(XS_ERROR, ''), 'ENOSYS');
    isError(c.req(20, ''), 'ENOSYS');
    isError(c.req(XS_INTRODUCE, '2\0' + '5\0' + '3\0'), 'EACCES');
    isError(c.req(XS_CONTROL, 'check\0'), 'EACCES');
    isError(c.req(17, '1\0'), 'EACCES');
    for (const t of [9, 18, 19, 23, 24, 25, 26]) isError(c.req(t, '1\0'), 'EACCES');
  });

  it('enforces permissions for a domU (EACCES) and lets dom0 bypass them', () => {
    const xs = makeStore();
    const c = new RingClient(xs);
    isError(c.req(XS_DIRECTORY, '/\0'), 'EACCES');
    isError(c.req(XS_DIRECTORY, '/local/domain\0'), 'EACCES');
    isError(c.req(XS_READ, '/local/domain/0/name\0'), 'EACCES');
    // Missing node under an unreadable parent: EACCES, not ENOENT.
    isError(c.req(XS_READ, '/local/domain/0/nope\0'), 'EACCES');
    // Readable but not writable.
    assert.equal(c.req(XS_READ, 'name\0').text, 'guest');
    isError(c.req(XS_WRITE, 'name\0evil'), 'EACCES');
    isError(c.req(XS_WRITE, 'newnode\0x'), 'EACCES');
    isError(c.req(XS_RM, 'name\0'), 'EACCES');
    // Writable by the guest.
    assert.equal(c.req(XS_WRITE, 'control/shutdown\0poweroff').text, 'OK\0');
    // Nodes the domU creates are its own.
    assert.equal(c.req(XS_WRITE, 'data/mine\0v').text, 'OK\0');
    assert.deepEqual(xs.getPerms('/local/domain/1/data/mine'), ['n1']);
    const gp = c.req(XS_GET_PERMS, 'data/mine\0');
    assert.equal(gp.text, 'n1\0');
    // Another domain's node with an explicit grant.
    xs.write('/local/domain/0/backend/test/x', 'v');
    xs.setPerms('/local/domain/0/backend/test/x', ['n0', 'r1']);
    assert.equal(c.req(XS_READ, '/local/domain/0/backend/test/x\0').text, 'v');
    isError(c.req(XS_WRITE, '/local/domain/0/backend/test/x\0w'), 'EACCES');
    // SET_PERMS: owner can change others' rights but not the owner; non-owner cannot at all.
    assert.equal(c.req(XS_SET_PERMS, 'data/mine\0n1\0r0\0').text, 'OK\0');
    assert.deepEqual(xs.getPerms('/local/domain/1/data/mine'), ['n1', 'r0']);
    isError(c.req(XS_SET_PERMS, 'data/mine\0n0\0'), 'EPERM');
    isError(c.req(XS_SET_PERMS, 'name\0n1\0'), 'EACCES');
    isError(c.req(XS_SET_PERMS, 'data/mine\0x1\0'), 'EINVAL');
    isError(c.req(XS_SET_PERMS, 'data/mine\0'), 'EINVAL');
    isError(c.req(XS_SET_PERMS, 'data/mine\0n1\0r0\0r0\0r0\0r0\0r0\0'), 'ENOSPC');
    // dom0 (toolstack) bypasses everything.
    xs.write('/local/domain/1/name', 'renamed');
    assert.equal(xs.read('/local/domain/1/name'), 'renamed');
  });

  it('removes deeply nested subtrees completely', () => {
    const xs = makeStore();
    const c = new RingClient(xs);
    const deep = `data/${Array(900).fill('a').join('/')}`;
    assert.equal(c.req(XS_WRITE, `${deep}\0v`).text, 'OK\0');
    assert.equal(xs.read(`/local/domain/1/${deep}`), 'v');
    assert.equal(c.req(XS_RM, 'data/a\0').text, 'OK\0');
    assert.equal(xs.read(`/local/domain/1/${deep}`), undefined);
    assert.equal(xs.read('/local/domain/1/data/a/a/a'), undefined);
    isError(c.req(XS_READ, `${deep}\0`), 'ENOENT');
    // Recreating works from a clean slate.
    assert.equal(c.req(XS_WRITE, 'data/a/a\0w').text, 'OK\0');
    assert.deepEqual(xs.directory('/local/domain/1/data/a'), ['a']);
  });

  it('enforces the node size quota (ENOSPC) for a domU', () => {
    const c = new RingClient(makeStore());
    // 16-byte header + 8 per permission (1) + value must stay <= 2048.
    assert.equal(c.req(XS_WRITE, `data/big\0${'x'.repeat(2048 - 24)}`).text, 'OK\0');
    isError(c.req(XS_WRITE, `data/big\0${'x'.repeat(2048 - 23)}`), 'ENOSPC');
  });

  it('handles several messages per kick, messages split across kicks, and ring wrap-around', () => {
    const c = new RingClient(makeStore());
    // Two messages at once.
    c.putRaw(c.encode(XS_WRITE, 'data/a\x001'));
    c.putRaw(c.encode(XS_WRITE, 'data/b\x002'));
    c.conn.kick();
    const two = c.take();
    assert.equal(two.length, 2);
    assert.ok(two.every((m) => m.text === 'OK\0'));
    // A partial message: header only, then the body.
    const msg = c.encode(XS_READ, 'data/a\0');
    c.putRaw(msg.subarray(0, 10));
    c.conn.kick();
    assert.equal(c.take().length, 0);
    c.putRaw(msg.subarray(10));
    c.conn.kick();
    assert.equal(c.take()[0].text, '1');
    // Many round trips wrap both rings (free-running indices pass 1024 several times).
    for (let i = 0; i < 200; i++) {
      const v = `value-${i}-${'z'.repeat(i % 50)}`;
      assert.equal(c.req(XS_WRITE, `data/k${i % 7}\0${v}`).text, 'OK\0');
      assert.equal(c.req(XS_READ, `data/k${i % 7}\0`).text, v);
    }
    assert.ok(c.u32(XS_RING_REQ_PROD) > 4096);
    assert.ok(c.u32(XS_RING_RSP_PROD) > 4096);
    assert.ok(c.notifications > 0);
  });

  it('streams a reply larger than the response ring as the guest consumes it', () => {
    const c = new RingClient(makeStore());
    const big = 'y'.repeat(1900);
    assert.equal(c.req(XS_WRITE, `data/big\0${big}`).text, 'OK\0');
    c.putRaw(c.encode(XS_READ, 'data/big\0'));
    c.conn.kick();
    assert.equal(c.take().length, 0); // 1916 bytes do not fit in 1024
    assert.equal(c.u32(XS_RING_RSP_PROD) - c.u32(XS_RING_RSP_CONS), 1024);
    // The guest consumes raw bytes to make room, then kicks.
    const got: number[] = [];
    for (let guard = 0; guard < 10 && got.length < 16 + 1900; guard++) {
      const cons = c.u32(XS_RING_RSP_CONS);
      const prod = c.u32(XS_RING_RSP_PROD);
      for (let i = cons; i !== prod; i = (i + 1) >>> 0) got.push(c.mem.read8(c.off + 0x400 + (i & 1023)));
      c.set32(XS_RING_RSP_CONS, prod);
      c.conn.kick();
    }
    assert.equal(got.length, 16 + 1900);
    assert.equal(dec.decode(new Uint8Array(got.slice(16))), big);
  });

  it('fires watches once on registration, then for the path and descendants, with tokens and relative paths', () => {
    const xs = makeStore();
    const c = new RingClient(xs);
    const msgs = c.call(XS_WATCH, 'data\0tok1\0');
    assert.equal(msgs.length, 2);
    assert.equal(msgs[0].type, XS_WATCH);
    assert.equal(msgs[0].text, 'OK\0');
    assert.equal(msgs[1].type, XS_WATCH_EVENT);
    assert.equal(msgs[1].text, 'data\0tok1\0');
    assert.equal(msgs[1].reqId, 0);
    // Watch on a missing node also fires immediately.
    const m2 = c.call(XS_WATCH, '/local/domain/1/device/vbd\0abs\0');
    assert.equal(m2[1].text, '/local/domain/1/device/vbd\0abs\0');
    // Duplicate -> EEXIST.
    isError(c.req(XS_WATCH, 'data\0tok1\0'), 'EEXIST');
    // A write below fires with the changed path (relative for a relative watch).
    const ev = c.call(XS_WRITE, 'data/x/y\0v');
    const events = ev.filter((m) => m.type === XS_WATCH_EVENT);
    assert.deepEqual(
      events.map((e) => e.text),
      ['data/x/y\0tok1\0'],
    );
    // The event precedes the write's ack (xenstored fires before replying).
    assert.equal(ev[ev.length - 1].type, XS_WRITE);
    // Toolstack changes fire guest watches too (absolute watch, absolute path).
    xs.write('/local/domain/1/device/vbd/51712/state', '1');
    const e2 = c.take();
    assert.deepEqual(
      e2.map((e) => e.text),
      ['/local/domain/1/device/vbd/51712/state\0abs\0'],
    );
    // Removal fires for removed descendants too.
    c.call(XS_WATCH, 'data/x/y\0deep\0');
    const rm = c.call(XS_RM, 'data/x\0').filter((m) => m.type === XS_WATCH_EVENT);
    const texts = rm.map((e) => e.text).sort();
    assert.ok(texts.includes('data/x\0tok1\0'));
    assert.ok(texts.includes('data/x/y\0deep\0'));
    // UNWATCH stops events; unknown watch -> ENOENT.
    assert.equal(c.req(XS_UNWATCH, 'data\0tok1\0').text, 'OK\0');
    isError(c.req(XS_UNWATCH, 'data\0tok1\0'), 'ENOENT');
    assert.equal(c.call(XS_WRITE, 'data/z\0v').filter((m) => m.type === XS_WATCH_EVENT).length, 0);
    assert.ok(xs.watches().some((w) => w.domid === 1 && w.token === 'abs'));
    // RESET_WATCHES drops them all.
    assert.equal(c.req(XS_RESET_WATCHES, '').text, 'OK\0');
    assert.equal(xs.watches().filter((w) => w.domid === 1).length, 0);
  });

  it('returns watch tokens byte for byte', () => {
    const c = new RingClient(makeStore());
    const token = new Uint8Array([0x74, 0xff, 0x80, 0xc3, 0x28]);
    const body = new Uint8Array([...new TextEncoder().encode('data\0'), ...token, 0]);
    const msgs = c.call(XS_WATCH, body);
    const ev = msgs.find((m) => m.type === XS_WATCH_EVENT)!;
    assert.deepEqual([...ev.body], [...new TextEncoder().encode('data\0'), ...token, 0]);
  });

  it('does not send watch events for nodes the watcher cannot read', () => {
    const xs = makeStore();
    const c = new RingClient(xs);
    c.call(XS_WATCH, '/local/domain/0\0t\0');
    xs.write('/local/domain/0/secret/x', 'v');
    assert.equal(c.take().length, 0);
    xs.write('/local/domain/0/pub', 'v');
    xs.setPerms('/local/domain/0/pub', ['n0', 'r1']);
    assert.ok(c.take().some((m) => m.text === '/local/domain/0/pub\0t\0'));
  });

  it('runs dom0 watch callbacks after the request that triggered them', () => {
    const xs = makeStore();
    const c = new RingClient(xs);
    const seen: string[] = [];
    xs.watch('/local/domain/1/data', 'cb', (p) => {
      seen.push(p);
      if (p.endsWith('/ping')) xs.write('/local/domain/1/data/pong', 'back');
    });
    assert.deepEqual(seen, ['/local/domain/1/data']);
    c.req(XS_WRITE, 'data/ping\0x');
    assert.ok(seen.includes('/local/domain/1/data/ping'));
    assert.ok(seen.includes('/local/domain/1/data/pong'));
    assert.equal(xs.read('/local/domain/1/data/pong'), 'back');
    assert.ok(xs.watches().some((w) => w.domid === 0 && w.token === 'cb'));
  });

  it('commits transactions without conflict and fails conflicting ones with EAGAIN', () => {
    const xs = makeStore();
    const c = new RingClient(xs);
    c.call(XS_WATCH, 'data\0w\0');
    const t = c.req(XS_TRANSACTION_START, '\0');
    assert.equal(t.type, XS_TRANSACTION_START);
    const id = Number(t.text.replace('\0', ''));
    assert.ok(id > 0);
    assert.equal(c.req(XS_WRITE, 'data/t1\0in-tx', id).text, 'OK\0');
    // Not visible outside the transaction yet, and no event yet.
    assert.equal(xs.read('/local/domain/1/data/t1'), undefined);
    isError(c.req(XS_READ, 'data/t1\0'), 'ENOENT');
    assert.equal(c.req(XS_READ, 'data/t1\0', id).text, 'in-tx');
    const end = c.call(XS_TRANSACTION_END, 'T\0', id);
    assert.equal(end.filter((m) => m.type === XS_TRANSACTION_END)[0].text, 'OK\0');
    assert.ok(end.some((m) => m.type === XS_WATCH_EVENT && m.text === 'data/t1\0w\0'));
    assert.equal(xs.read('/local/domain/1/data/t1'), 'in-tx');
    // Ended transaction id is gone.
    isError(c.req(XS_READ, 'data/t1\0', id), 'ENOENT');

    // Conflict: read a node in the transaction, change it outside, commit -> EAGAIN.
    const id2 = Number(c.req(XS_TRANSACTION_START, '\0').text.replace('\0', ''));
    assert.notEqual(id2, id);
    assert.equal(c.req(XS_READ, 'data/t1\0', id2).text, 'in-tx');
    assert.equal(c.req(XS_WRITE, 'data/t2\0x', id2).text, 'OK\0');
    xs.write('/local/domain/1/data/t1', 'changed');
    isError(c.req(XS_TRANSACTION_END, 'T\0', id2), 'EAGAIN');
    assert.equal(xs.read('/local/domain/1/data/t2'), undefined);

    // Abort discards.
    const id3 = Number(c.req(XS_TRANSACTION_START, '\0').text.replace('\0', ''));
    c.req(XS_WRITE, 'data/t3\0x', id3);
    assert.equal(c.req(XS_TRANSACTION_END, 'F\0', id3).text, 'OK\0');
    assert.equal(xs.read('/local/domain/1/data/t3'), undefined);

    // Errors: bad argument, no transaction, nested start.
    const id4 = Number(c.req(XS_TRANSACTION_START, '\0').text.replace('\0', ''));
    isError(c.req(XS_TRANSACTION_END, 'X\0', id4), 'EINVAL');
    isError(c.req(XS_TRANSACTION_END, 'T\0', 0), 'ENOENT');
    isError(c.req(XS_TRANSACTION_START, '\0', id4), 'EBUSY');
    isError(c.req(XS_READ, 'data/t1\0', 424242), 'ENOENT');
    // Unrelated outside changes do not conflict.
    c.req(XS_READ, 'data/t1\0', id4);
    xs.write('/local/domain/1/data/other', 'x');
    assert.equal(c.req(XS_TRANSACTION_END, 'T\0', id4).text, 'OK\0');
  });

  it('answers DIRECTORY_PART with the generation and a terminating empty string', () => {
    const c = new RingClient(makeStore());
    c.req(XS_WRITE, 'data/a\0');
    c.req(XS_WRITE, 'data/bb\0');
    const p = c.req(XS_DIRECTORY_PART, 'data\0' + '0\0');
    assert.equal(p.type, XS_DIRECTORY_PART);
    const parts = p.text.split('\0');
    assert.match(parts[0], /^[0-9]+$/);
    assert.deepEqual(parts.slice(1), ['a', 'bb', '', '']);
    const q = c.req(XS_DIRECTORY_PART, 'data\0' + '2\0').text.split('\0');
    assert.deepEqual(q.slice(1), ['bb', '', '']);
    const end = c.req(XS_DIRECTORY_PART, 'data\0' + '99\0').text.split('\0');
    assert.deepEqual(end.slice(1), ['', '']);
    isError(c.req(XS_DIRECTORY_PART, 'data\0'), 'EINVAL');
  });

  it('enforces the node count quota (ENOSPC) for a domU', () => {
    const xs = makeStore();
    const c = new RingClient(xs);
    let err: Msg | undefined;
    let made = 0;
    for (let i = 0; i < 1100 && !err; i++) {
      // Spread over directories: one parent's child list would hit the node size quota first.
      const r = c.req(XS_WRITE, `data/d${i % 50}/n${i}\0`);
      if (r.type === XS_ERROR) err = r;
      else made++;
    }
    assert.ok(err);
    isError(err!, 'ENOSPC');
    assert.ok(made > 900 && made < 1000, `made ${made}`);
    // Removing nodes frees quota again.
    assert.equal(c.req(XS_RM, 'data/d0\0').text, 'OK\0');
    assert.equal(c.req(XS_WRITE, 'data/again\0').text, 'OK\0');
  });

  it('stops reading requests while 20 replies wait for ring space', () => {
    const xs = makeStore();
    const c = new RingClient(xs);
    c.req(XS_WRITE, `data/big\0${'b'.repeat(900)}`);
    const reqCons0 = c.u32(XS_RING_REQ_CONS);
    const one = c.encode(XS_READ, 'data/big\0');
    for (let i = 0; i < 30; i++) c.putRaw(c.encode(XS_READ, 'data/big\0'));
    c.conn.kick();
    // 21 requests consumed at most (the 21st reply would exceed the quota); the rest wait in req[].
    const consumed = (c.u32(XS_RING_REQ_CONS) - reqCons0) / one.length;
    assert.ok(consumed >= 20 && consumed <= 21, `consumed ${consumed}`);
    // Draining the responses lets the remaining requests through.
    let replies = 0;
    for (let guard = 0; guard < 200 && replies < 30; guard++) {
      const cons = c.u32(XS_RING_RSP_CONS);
      const prod = c.u32(XS_RING_RSP_PROD);
      replies += c.take().length;
      if (c.u32(XS_RING_RSP_CONS) === cons) c.set32(XS_RING_RSP_CONS, prod); // skip a partial message's bytes
      c.conn.kick();
    }
    assert.equal(c.u32(XS_RING_REQ_CONS), c.u32(XS_RING_REQ_PROD));
  });

  it('enforces the watch and transaction quotas', () => {
    const c = new RingClient(makeStore());
    let err: Msg | undefined;
    for (let i = 0; i < 200 && !err; i++) {
      const r = c.call(XS_WATCH, `data/w${i}\0t\0`).filter((m) => m.type !== XS_WATCH_EVENT)[0];
      if (r.type === XS_ERROR) err = r;
    }
    assert.ok(err);
    isError(err!, 'E2BIG');
    let terr: Msg | undefined;
    for (let i = 0; i < 20 && !terr; i++) {
      const r = c.req(XS_TRANSACTION_START, '\0');
      if (r.type === XS_ERROR) terr = r;
    }
    assert.ok(terr);
    isError(terr!, 'ENOSPC');
  });

  it('ignores the connection and sets the error field on ring misuse, and recovers on reconnect', () => {
    const xs = makeStore();
    // Bad request indexes.
    const c = new RingClient(xs);
    c.set32(XS_RING_REQ_PROD, 5000);
    assert.doesNotThrow(() => c.conn.kick());
    assert.equal(c.u32(XS_RING_ERROR), XENSTORE_ERROR_RINGIDX);
    assert.ok(xs.isIgnored(1));
    // Further requests are ignored.
    c.set32(XS_RING_REQ_PROD, c.u32(XS_RING_REQ_CONS));
    c.putRaw(c.encode(XS_READ, 'name\0'));
    c.conn.kick();
    assert.equal(c.take().length, 0);
    // Reconnect: guest sets connection = 1; xenstored resets the ring and answers again.
    c.set32(XS_RING_CONNECTION, 1);
    c.conn.kick();
    assert.equal(c.u32(XS_RING_CONNECTION), 0);
    assert.equal(c.u32(XS_RING_ERROR), 0);
    assert.equal(c.u32(XS_RING_REQ_PROD), 0);
    assert.equal(c.req(XS_READ, 'name\0').text, 'guest');

    // Oversized payload length: protocol error.
    const c2 = new RingClient(xs, 1);
    const hdr = c2.encode(XS_READ, '');
    new DataView(hdr.buffer).setUint32(12, 5000, true);
    c2.putRaw(hdr);
    assert.doesNotThrow(() => c2.conn.kick());
    assert.equal(c2.u32(XS_RING_ERROR), XENSTORE_ERROR_PROTO);

    // Bad response indexes.
    const c3 = new RingClient(xs, 1);
    c3.set32(XS_RING_RSP_PROD, 3000);
    c3.putRaw(c3.encode(XS_READ, 'name\0'));
    assert.doesNotThrow(() => c3.conn.kick());
    assert.equal(c3.u32(XS_RING_ERROR), XENSTORE_ERROR_RINGIDX);
  });

  it('keeps the store consistent under random guest and toolstack operations with transactions', () => {
    const xs = makeStore();
    const c = new RingClient(xs);
    let seed = 777;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % n;
    const names = ['a', 'b', 'c'];
    const randPath = () => {
      const depth = 1 + rnd(3);
      return ['data', ...Array.from({ length: depth }, () => names[rnd(3)])].join('/');
    };
    const txs: number[] = [];
    let commits = 0;
    let conflicts = 0;
    for (let i = 0; i < 1500; i++) {
      const tx = txs.length && rnd(2) ? txs[rnd(txs.length)] : 0;
      switch (rnd(8)) {
        case 0:
        case 1:
          c.req(XS_WRITE, `${randPath()}\0v${i}`, tx);
          break;
        case 2:
          c.req(XS_MKDIR, `${randPath()}\0`, tx);
          break;
        case 3:
          c.req(XS_RM, `${randPath()}\0`, tx);
          break;
        case 4:
          xs.write(`/local/domain/1/${randPath()}`, `t${i}`);
          break;
        case 5:
          if (rnd(3) === 0) xs.rm(`/local/domain/1/${randPath()}`);
          else c.req(XS_DIRECTORY, `${randPath()}\0`, tx);
          break;
        case 6:
          if (txs.length < 5) {
            const r = c.req(XS_TRANSACTION_START, '\0');
            txs.push(Number(r.text.replace('\0', '')));
          }
          break;
        case 7:
          if (txs.length) {
            const t = txs.splice(rnd(txs.length), 1)[0];
            const r = c.req(XS_TRANSACTION_END, rnd(4) ? 'T\0' : 'F\0', t);
            if (r.type === XS_ERROR) {
              assert.equal(r.text, 'EAGAIN\0');
              conflicts++;
            } else commits++;
          }
          break;
      }
      if (i % 100 === 0) assert.deepEqual(xs.checkConsistency(), [], `after op ${i}`);
    }
    assert.deepEqual(xs.checkConsistency(), []);
    assert.ok(commits > 10, `commits ${commits}`);
    assert.ok(conflicts > 0, `conflicts ${conflicts}`);
  });

  it('survives random garbage on the ring without throwing', () => {
    const xs = makeStore();
    let seed = 12345;
    const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 16;
    for (let round = 0; round < 30; round++) {
      const c = new RingClient(xs, 1);
      for (let k = 0; k < 5; k++) {
        const n = rnd() % 300;
        const junk = new Uint8Array(n);
        for (let i = 0; i < n; i++) junk[i] = rnd() & 0xff;
        // Mostly-sane headers with random types and small lengths, sometimes raw junk.
        if (round % 2 === 0 && n >= 16) {
          const dv = new DataView(junk.buffer);
          dv.setUint32(0, rnd() % 30, true);
          dv.setUint32(8, rnd() % 3, true);
          dv.setUint32(12, Math.min(n - 16, rnd() % 64), true);
        }
        c.putRaw(junk);
        assert.doesNotThrow(() => c.conn.kick());
        c.take();
      }
    }
    // The store is still consistent for the toolstack.
    assert.equal(xs.read('/local/domain/1/domid'), '1');
  });
});
