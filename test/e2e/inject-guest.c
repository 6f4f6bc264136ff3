/*
 * Hostile PV test guest for the webview-injection e2e test: writes markup
 * into XenStore (data/pwn, through the xenstore ring and store_evtchn) and
 * to its console (the console ring and console evtchn), then yields forever.
 * start_info (64-bit): store_mfn at 0x38, store_evtchn at 0x40,
 * console.domU.mfn at 0x48, console.domU.evtchn at 0x50 (Xen public/xen.h).
 * Ring layouts: public/io/xs_wire.h (xenstore_domain_interface),
 * public/io/console.h (xencons_interface). Hypercalls: sched_op = 29,
 * event_channel_op = 32 (EVTCHNOP_send = 4).
 */
typedef unsigned long u64;
typedef unsigned int u32;

static long hypercall3(long nr, long a1, long a2, long a3) {
  long ret;
  register long r10 asm("r10") = 0;
  asm volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10) : "rcx", "r11", "memory");
  return ret;
}
static void notify(u32 port) { u32 p = port; hypercall3(32, 4, (long)&p, 0); }
static void yield(void) { hypercall3(29, 0, 0, 0); }
static u32 length(const char *s) { u32 n = 0; while (s[n]) n++; return n; }

struct store_ring { char req[1024]; char rsp[1024]; volatile u32 req_cons, req_prod, rsp_cons, rsp_prod; };
struct cons_ring { char in[1024]; char out[2048]; volatile u32 in_cons, in_prod, out_cons, out_prod; };
struct wire_hdr { u32 type, req_id, tx_id, len; };

static const char payload[] = "<img src=x onerror=window.__pvscopePwned=1>";
static const u64 *m2p = (const u64 *)0xffff800000000000UL;

static void *page_of_mfn(u64 mfn) { return (void *)(m2p[mfn] << 12); }

static void store_put(struct store_ring *r, u32 port, const char *d, u32 n) {
  for (u32 i = 0; i < n; i++) {
    while (r->req_prod - r->req_cons >= sizeof r->req) { notify(port); yield(); }
    r->req[r->req_prod & (sizeof r->req - 1)] = d[i];
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    r->req_prod++;
  }
}
static void store_get(struct store_ring *r, u32 port, char *d, u32 n) {
  for (u32 i = 0; i < n; i++) {
    while (r->rsp_prod == r->rsp_cons) { notify(port); yield(); }
    d[i] = r->rsp[r->rsp_cons & (sizeof r->rsp - 1)];
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    r->rsp_cons++;
  }
}

u64 done;

void inject_main(u64 si) {
  struct store_ring *store = page_of_mfn(*(u64 *)(si + 0x38));
  u32 store_port = *(u32 *)(si + 0x40);
  struct cons_ring *cons = page_of_mfn(*(u64 *)(si + 0x48));
  u32 cons_port = *(u32 *)(si + 0x50);

  /* XS_WRITE (11): "data/pwn\0" followed by the value (no NUL). */
  const char *path = "data/pwn";
  struct wire_hdr h = { 11, 1, 0, length(path) + 1 + length(payload) };
  store_put(store, store_port, (const char *)&h, sizeof h);
  store_put(store, store_port, path, length(path) + 1);
  store_put(store, store_port, payload, length(payload));
  notify(store_port);
  struct wire_hdr reply;
  char body[64];
  store_get(store, store_port, (char *)&reply, sizeof reply);
  store_get(store, store_port, body, reply.len < sizeof body ? reply.len : sizeof body);

  /* Console: the payload on a line of its own. */
  const char *line = "\r\n";
  for (u32 i = 0; i < length(payload) + 2; i++) {
    char c = i < length(payload) ? payload[i] : line[i - length(payload)];
    while (cons->out_prod - cons->out_cons >= sizeof cons->out) { notify(cons_port); yield(); }
    cons->out[cons->out_prod & (sizeof cons->out - 1)] = c;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    cons->out_prod++;
  }
  notify(cons_port);
  done = reply.type;
  for (;;) yield();
}
