typedef unsigned long u64; typedef unsigned int u32; typedef unsigned short u16; typedef unsigned char u8;
static long hc(long nr, long a1, long a2, long a3) {
  long r; register long r10 asm("r10") = 0;
  asm volatile("syscall" : "=a"(r) : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10) : "rcx", "r11", "memory");
  return r;
}
struct xs_ring { char req[1024]; char rsp[1024]; u32 req_cons, req_prod, rsp_cons, rsp_prod; };
static volatile struct xs_ring *ring; static u32 port;
static void send_ev(void) { u32 p = port; hc(32, 4, (long)&p, 0); }
static void put(const void *d, u32 n) {
  const char *s = d;
  for (u32 i = 0; i < n; i++) { while (ring->req_prod - ring->req_cons >= 1024) hc(29, 0, 0, 0); ring->req[ring->req_prod & 1023] = s[i]; __atomic_thread_fence(__ATOMIC_SEQ_CST); ring->req_prod++; }
}
static void get(void *d, u32 n) {
  char *s = d;
  for (u32 i = 0; i < n; i++) { while (ring->rsp_prod == ring->rsp_cons) { send_ev(); hc(29, 0, 0, 0); } s[i] = ring->rsp[ring->rsp_cons & 1023]; __atomic_thread_fence(__ATOMIC_SEQ_CST); ring->rsp_cons++; }
}
static u32 slen(const char *s) { u32 n = 0; while (s[n]) n++; return n; }
struct hdr { u32 type, req_id, tx_id, len; };
static char evbuf[256]; static int evseen;
/* Sends one request of type t with payload parts a (with NUL) and b (without), returns reply type and body. */
static u32 xs(u32 t, u32 tx, const char *a, const char *b, char *out, u32 *outlen) {
  u32 bl = b ? slen(b) + (t == 4 ? 1 : 0) : 0; /* WATCH: token NUL-terminated too */
  struct hdr h = { t, 7, tx, slen(a) + 1 + bl };
  put(&h, sizeof h); put(a, slen(a) + 1); if (b) put(b, bl);
  send_ev();
  struct hdr r; get(&r, sizeof r);
  while (r.type == 15) { get(evbuf, r.len); evseen = 1; get(&r, sizeof r); }
  get(out + 1, r.len); out[1 + r.len] = 0; *outlen = r.len; return r.type;
}
/* results[]: tx start type, tx id, write-in-tx type, read-outside type, end type, read-after type, watch type, event seen, watch path/token ok */
u64 results[16];
void c_main(u64 si) {
  u64 store_mfn = *(u64 *)(si + 0x38); port = *(u32 *)(si + 0x40);
  /* Map the ring: it is inside the initial mapping; find its pfn through the M2P (RO at 0xffff800000000000). */
  u64 pfn = ((u64 *)0xffff800000000000UL)[store_mfn];
  ring = (volatile struct xs_ring *)(pfn << 12);
  char buf[512]; u32 n;
  results[0] = xs(6, 0, "", 0, buf, &n);            /* TRANSACTION_START */
  u32 tx = 0; for (u32 i = 1; buf[i]; i++) tx = tx * 10 + (buf[i] - '0');
  results[1] = tx;
  results[2] = xs(11, tx, "data/k", "v1", buf, &n);   /* WRITE in tx */
  results[3] = xs(2, 0, "data/k", 0, buf, &n);        /* READ outside: ENOENT (error 16) */
  results[4] = xs(7, tx, "T", 0, buf, &n);            /* TRANSACTION_END commit */
  results[5] = xs(2, 0, "data/k", 0, buf, &n);        /* READ: v1 */
  results[6] = (buf[1] == 'v' && buf[2] == '1');
  results[7] = xs(4, 0, "data", "tok", buf, &n);      /* WATCH */
  /* the watch event fires once immediately (before or after the reply) */
  u32 type = 15;
  if (!evseen) { struct hdr r; get(&r, sizeof r); get(evbuf, r.len); type = r.type; }
  results[8] = type; results[9] = (evbuf[0] == 'd' && evbuf[4] == 0 && evbuf[5] == 't');
  results[10] = 0x600d;
}
