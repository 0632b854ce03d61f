/*
 * udp_recv: a UDP receive socket drained by its own native thread with recvmmsg (Linux), for
 * onsight's syslog UDP input. Node-API only (NAPI_VERSION 8): one build loads on every Node >= 20.
 *
 * The thread blocks in poll, then takes up to VLEN datagrams per recvmmsg call into a scratch area
 * and copies each (trailing LF/CR/NUL trimmed; empty and too-large ones counted, not kept) into the
 * batch being filled: bytes end to end, where each ends, its sender (an index into the batch's
 * distinct senders) and when the call returned. A batch is queued for JavaScript when full or
 * `flushMs` after its first datagram; JavaScript is told with a thread-safe function (at most one
 * notice outstanding) and takes the batches with take(). At most `maxQueued` datagrams, and batches
 * holding at most `maxQueuedBytes` of memory (each its bytes and its fixed arrays: a datagram a
 * batch, as a slow trickle flushed every `flushMs` makes, holds a whole batch), wait in the queue:
 * beyond that they are dropped and counted (`backpressure`), so the kernel buffer keeps draining
 * while JavaScript is busy and nothing is lost uncounted.
 *
 * Errors thrown to JavaScript carry a stable `code` (UDPRECV_*), and `errno`/`syscall` when a
 * system call failed. Nothing here aborts the process on bad input.
 */
#include <node_api.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* datagrams per recvmmsg call */
#define VLEN 64
/* one scratch slot holds any UDP payload (at most 65,527 bytes over IPv6, 65,507 over IPv4) */
#define SLOT 65536
/* a batch closes at this many datagrams, or distinct senders, whichever comes first */
#define BATCH_MAX_DATAGRAMS 8192
#define BATCH_MAX_SENDERS 64
/*
 * after taking what the socket held, the thread sleeps this long before polling again: at 200k msg/s
 * on our 2-core VM that takes its CPU from 1.7 to 0.8 µs per datagram (and the sender's, which wakes
 * a polling receiver, down too); the kernel buffer only needs a millisecond's worth more
 */
#define NAP_US 1000

typedef struct {
  int family;
  uint8_t addr[16];
} sender_t;

typedef struct batch {
  struct batch *next;
  uint8_t *bytes;
  size_t used, cap;
  uint32_t count;
  uint32_t ends[BATCH_MAX_DATAGRAMS];
  uint32_t sender_idx[BATCH_MAX_DATAGRAMS];
  double times[BATCH_MAX_DATAGRAMS];
  uint32_t nsenders;
  sender_t senders[BATCH_MAX_SENDERS];
} batch_t;

typedef struct {
  int fd;
  int wake_fd;
  pthread_t thread;
  int thread_running;
  atomic_int stopping;
  /* set when a notice is queued and JavaScript has not run it yet */
  atomic_int notice_pending;
  napi_threadsafe_function tsfn;
  napi_env env;
  int hook_registered;
  /* the thread-safe function is not finalized yet (it may still call call_js with r) */
  int tsfn_alive;
  /* the JS object is gone: free r once the thread-safe function is finalized */
  int free_pending;

  pthread_mutex_t mu;
  batch_t *head, *tail; /* queued for JavaScript (under mu) */
  atomic_size_t queued; /* datagrams in the queue */
  atomic_size_t queued_memory; /* memory the queued batches hold (batch_memory) */

  /* the receive thread's own */
  batch_t *filling;
  double filling_deadline;
  uint8_t *scratch;
  struct mmsghdr msgs[VLEN];
  struct iovec iov[VLEN];
  struct sockaddr_storage addrs[VLEN];

  size_t max_queued;
  size_t max_queued_memory;
  size_t batch_bytes;
  size_t max_message;
  double flush_ms;

  /* errors: datagrams lost to an error; failures: failed system calls and callbacks that threw (no datagram lost) */
  atomic_uint_fast64_t received, backpressure, empty, too_large, errors, failures;
  atomic_int last_errno;
} receiver_t;

/* ---------------------------------------------------------------------------------------------- */
/* errors */

static void throw_code(napi_env env, const char *code, const char *msg, int err, const char *syscall) {
  char text[256];
  if (err) snprintf(text, sizeof text, "%s: %s", msg, strerror(err));
  else snprintf(text, sizeof text, "%s", msg);
  napi_value m, c, e;
  if (napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &m) != napi_ok) return;
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &c) != napi_ok) return;
  if (napi_create_error(env, c, m, &e) != napi_ok) return;
  if (err) {
    napi_value n, s;
    if (napi_create_int32(env, err, &n) == napi_ok) napi_set_named_property(env, e, "errno", n);
    if (syscall && napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &s) == napi_ok) napi_set_named_property(env, e, "syscall", s);
  }
  napi_throw(env, e);
}

#define CHECK(call)                                                      \
  do {                                                                   \
    if ((call) != napi_ok) {                                             \
      bool pending = false;                                              \
      napi_is_exception_pending(env, &pending);                          \
      if (!pending) throw_code(env, "UDPRECV_INTERNAL", #call, 0, NULL); \
      return NULL;                                                       \
    }                                                                    \
  } while (0)

/* ---------------------------------------------------------------------------------------------- */
/* the receive thread */

static double now_ms(clockid_t clock) {
  struct timespec t;
  clock_gettime(clock, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* the memory a batch holds: its fixed arrays and its bytes */
static size_t batch_memory(const batch_t *b) {
  return sizeof *b + b->cap;
}

static batch_t *batch_new(size_t cap) {
  batch_t *b = malloc(sizeof *b);
  if (!b) return NULL;
  b->bytes = malloc(cap);
  if (!b->bytes) {
    free(b);
    return NULL;
  }
  b->next = NULL;
  b->used = 0;
  b->cap = cap;
  b->count = 0;
  b->nsenders = 0;
  return b;
}

static void batch_free(batch_t *b) {
  free(b->bytes);
  free(b);
}

static void notify(receiver_t *r) {
  if (atomic_exchange(&r->notice_pending, 1)) return;
  if (napi_call_threadsafe_function(r->tsfn, NULL, napi_tsfn_nonblocking) != napi_ok) atomic_store(&r->notice_pending, 0);
}

/* the batch being filled goes to the queue */
static void flush(receiver_t *r) {
  batch_t *b = r->filling;
  if (!b || !b->count) return;
  r->filling = NULL;
  pthread_mutex_lock(&r->mu);
  if (r->tail) r->tail->next = b;
  else r->head = b;
  r->tail = b;
  atomic_fetch_add(&r->queued, b->count);
  atomic_fetch_add(&r->queued_memory, batch_memory(b));
  pthread_mutex_unlock(&r->mu);
  notify(r);
}

static int sender_of(const struct sockaddr_storage *sa, sender_t *out) {
  memset(out, 0, sizeof *out);
  if (sa->ss_family == AF_INET) {
    out->family = AF_INET;
    memcpy(out->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    return 0;
  }
  if (sa->ss_family == AF_INET6) {
    const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(a)) { /* ::ffff:10.0.0.1 is 10.0.0.1 */
      out->family = AF_INET;
      memcpy(out->addr, a->s6_addr + 12, 4);
    } else {
      out->family = AF_INET6;
      memcpy(out->addr, a->s6_addr, 16);
    }
    return 0;
  }
  return -1;
}

/* where `s` is among the batch's senders, added if new; -1 when the batch has no room for another */
static int sender_index(batch_t *b, const sender_t *s) {
  for (uint32_t i = 0; i < b->nsenders; i++) {
    if (b->senders[i].family == s->family && memcmp(b->senders[i].addr, s->addr, 16) == 0) return (int)i;
  }
  if (b->nsenders == BATCH_MAX_SENDERS) return -1;
  b->senders[b->nsenders] = *s;
  return (int)b->nsenders++;
}

static void keep(receiver_t *r, const uint8_t *p, size_t len, const sender_t *s, double at) {
  if (atomic_load(&r->queued) + (r->filling ? r->filling->count : 0) >= r->max_queued) {
    atomic_fetch_add(&r->backpressure, 1);
    return;
  }

  for (int attempt = 0; attempt < 2; attempt++) {
    batch_t *b = r->filling;
    if (!b) {
      size_t cap = len > r->batch_bytes ? len : r->batch_bytes;
      /* a new batch would take the queue, once it is queued, past its memory */
      if (atomic_load(&r->queued_memory) + sizeof(batch_t) + cap > r->max_queued_memory) {
        atomic_fetch_add(&r->backpressure, 1);
        return;
      }
      b = r->filling = batch_new(cap);
      if (!b) {
        atomic_fetch_add(&r->errors, 1);
        atomic_store(&r->last_errno, ENOMEM);
        return;
      }
      r->filling_deadline = now_ms(CLOCK_MONOTONIC) + r->flush_ms;
    }
    int si = b->used + len <= b->cap && b->count < BATCH_MAX_DATAGRAMS ? sender_index(b, s) : -1;
    if (si < 0) {
      flush(r); /* full: the next attempt starts a new batch */
      continue;
    }
    memcpy(b->bytes + b->used, p, len);
    b->used += len;
    b->ends[b->count] = (uint32_t)b->used;
    b->sender_idx[b->count] = (uint32_t)si;
    b->times[b->count] = at;
    b->count++;
    atomic_fetch_add(&r->received, 1);
    return;
  }
}

/* take what the socket holds, up to `rounds` recvmmsg calls; 1 when it may hold more */
static int drain(receiver_t *r, int rounds) {
  for (int round = 0; round < rounds; round++) {
    for (int i = 0; i < VLEN; i++) {
      r->msgs[i].msg_hdr.msg_namelen = sizeof r->addrs[i];
      r->msgs[i].msg_hdr.msg_flags = 0;
    }
    int n = recvmmsg(r->fd, r->msgs, VLEN, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      if (errno == EINTR) continue;
      /* e.g. ECONNREFUSED from an ICMP error: counted, the socket stays usable */
      atomic_fetch_add(&r->failures, 1);
      atomic_store(&r->last_errno, errno);
      return 0;
    }
    double at = now_ms(CLOCK_REALTIME);
    for (int i = 0; i < n; i++) {
      const uint8_t *p = r->scratch + (size_t)i * SLOT;
      size_t len = r->msgs[i].msg_len;
      if (r->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
        atomic_fetch_add(&r->too_large, 1);
        continue;
      }
      while (len > 0 && (p[len - 1] == '\n' || p[len - 1] == '\r' || p[len - 1] == 0)) len--;
      if (len == 0) {
        atomic_fetch_add(&r->empty, 1);
        continue;
      }
      if (len > r->max_message) {
        atomic_fetch_add(&r->too_large, 1);
        continue;
      }
      sender_t s;
      if (sender_of(&r->addrs[i], &s) < 0) {
        atomic_fetch_add(&r->errors, 1);
        continue;
      }
      keep(r, p, len, &s, at);
    }
    if (n < VLEN) return 0;
  }
  return 1;
}

static void *receive_loop(void *arg) {
  receiver_t *r = arg;
  pthread_setname_np(pthread_self(), "udp-recv"); /* shows in top -H and /proc/PID/task/TID/comm */
  struct pollfd pf[2] = {{.fd = r->fd, .events = POLLIN}, {.fd = r->wake_fd, .events = POLLIN}};
  while (!atomic_load(&r->stopping)) {
    int timeout = -1;
    if (r->filling && r->filling->count) {
      double left = r->filling_deadline - now_ms(CLOCK_MONOTONIC);
      timeout = left <= 0 ? 0 : (int)left + 1;
    }
    int p = poll(pf, 2, timeout);
    if (atomic_load(&r->stopping)) break;
    if (p < 0 && errno != EINTR) {
      atomic_fetch_add(&r->failures, 1);
      atomic_store(&r->last_errno, errno);
      usleep(1000);
    }
    if (p > 0 && (pf[0].revents & POLLIN)) {
      /* a busy socket: keep taking, but close a due batch between rounds */
      while (drain(r, 16) && !atomic_load(&r->stopping)) {
        if (r->filling && r->filling->count && now_ms(CLOCK_MONOTONIC) >= r->filling_deadline) flush(r);
      }
      /* datagrams gather in the kernel buffer meanwhile: a busy socket costs one wakeup a nap, not one per burst */
      usleep(NAP_US);
    }
    if (r->filling && r->filling->count && now_ms(CLOCK_MONOTONIC) >= r->filling_deadline) flush(r);
  }
  /* what the kernel holds for us at close is taken too (bounded): a stop lost the datagrams sent
     just before it, where node's dgram socket takes them (959 of 1,000 in the probe's loop) */
  for (int i = 0; i < 64 && drain(r, 16); i++) {
  }
  flush(r); /* what was received goes to JavaScript, closing or not */
  return NULL;
}

/* ---------------------------------------------------------------------------------------------- */
/* lifetime */

/* stop the thread and close the socket (idempotent; the JS thread only) */
static void shut(receiver_t *r) {
  if (r->thread_running) {
    atomic_store(&r->stopping, 1);
    uint64_t one = 1;
    ssize_t w = write(r->wake_fd, &one, sizeof one);
    (void)w;
    pthread_join(r->thread, NULL);
    r->thread_running = 0;
  }
  if (r->fd >= 0) close(r->fd);
  if (r->wake_fd >= 0) close(r->wake_fd);
  r->fd = r->wake_fd = -1;
  if (r->tsfn) {
    napi_release_threadsafe_function(r->tsfn, napi_tsfn_release);
    r->tsfn = NULL;
  }
}

static void receiver_free(receiver_t *r) {
  while (r->head) {
    batch_t *b = r->head;
    r->head = b->next;
    batch_free(b);
  }
  if (r->filling) batch_free(r->filling);
  free(r->scratch);
  pthread_mutex_destroy(&r->mu);
  free(r);
}

/* r is freed by whichever comes last: the JS object's finalizer or the thread-safe function's */
static void release_receiver(receiver_t *r) {
  if (r->tsfn_alive) r->free_pending = 1;
  else receiver_free(r);
}

static void on_tsfn_finalize(napi_env env, void *data, void *hint) {
  receiver_t *r = data;
  r->tsfn_alive = 0;
  if (r->free_pending) receiver_free(r);
}

/* the environment goes away (a worker thread ends) with the receiver still open */
static void on_env_cleanup(void *arg) {
  receiver_t *r = arg;
  r->hook_registered = 0;
  shut(r);
}

static void on_finalize(napi_env env, void *data, void *hint) {
  receiver_t *r = data;
  if (r->hook_registered) napi_remove_env_cleanup_hook(env, on_env_cleanup, r);
  shut(r);
  release_receiver(r);
}

static void call_js(napi_env env, napi_value js_cb, void *context, void *data) {
  receiver_t *r = context;
  atomic_store(&r->notice_pending, 0);
  if (!env || !js_cb) return;
  napi_value undefined;
  if (napi_get_undefined(env, &undefined) != napi_ok) return;
  if (napi_call_function(env, undefined, js_cb, 0, NULL, NULL) != napi_ok) {
    /* the callback threw: counted, not rethrown into the process */
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value e;
      napi_get_and_clear_last_exception(env, &e);
    }
    atomic_fetch_add(&r->failures, 1);
  }
}

/* ---------------------------------------------------------------------------------------------- */
/* JavaScript API */

static receiver_t *self(napi_env env, napi_callback_info info) {
  napi_value this_arg;
  void *p = NULL;
  if (napi_get_cb_info(env, info, NULL, NULL, &this_arg, NULL) != napi_ok) return NULL;
  if (napi_unwrap(env, this_arg, &p) != napi_ok || !p) {
    throw_code(env, "UDPRECV_BAD_ARGUMENT", "not a receiver", 0, NULL);
    return NULL;
  }
  return p;
}

/* a typed array of `n` elements of `size` bytes whose bytes are filled by the caller through *data */
static napi_value make_typed(napi_env env, napi_typedarray_type type, size_t n, size_t size, void **data) {
  napi_value ab, arr;
  if (napi_create_arraybuffer(env, n * size, data, &ab) != napi_ok) return NULL;
  if (napi_create_typedarray(env, type, n, ab, 0, &arr) != napi_ok) return NULL;
  return arr;
}

/*
 * take(maxBytes?): the oldest queued batches, merged while they fit in maxBytes (at least one),
 * as { buf, bytes, ends, senderIdx, senders, times }; undefined when none is queued
 */
static napi_value js_take(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], this_arg;
  void *p = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, &this_arg, NULL) != napi_ok) return NULL;
  if (napi_unwrap(env, this_arg, &p) != napi_ok || !p) {
    throw_code(env, "UDPRECV_BAD_ARGUMENT", "not a receiver", 0, NULL);
    return NULL;
  }
  receiver_t *r = p;
  double max_bytes = 0;
  if (argc >= 1) {
    napi_valuetype t;
    napi_typeof(env, argv[0], &t);
    if (t == napi_number) napi_get_value_double(env, argv[0], &max_bytes);
  }
  pthread_mutex_lock(&r->mu);
  batch_t *first = r->head, *last = first;
  size_t bytes = 0, count = 0, nsenders = 0;
  if (first) {
    bytes = first->used, count = first->count, nsenders = first->nsenders;
    size_t memory = batch_memory(first);
    while (last->next && (double)(bytes + last->next->used) <= max_bytes) {
      last = last->next;
      bytes += last->used, count += last->count, nsenders += last->nsenders;
      memory += batch_memory(last);
    }
    atomic_fetch_sub(&r->queued_memory, memory);
    r->head = last->next;
    if (!r->head) r->tail = NULL;
    last->next = NULL;
    atomic_fetch_sub(&r->queued, count);
  }
  pthread_mutex_unlock(&r->mu);
  napi_value out;
  if (!first) {
    napi_get_undefined(env, &out);
    return out;
  }
  napi_value buf, ends, idx, times, senders, bytes_v;
  uint8_t *buf_data = NULL;
  uint32_t *ends_data = NULL, *idx_data = NULL;
  double *times_data = NULL;
  int ok = napi_create_object(env, &out) == napi_ok && napi_create_arraybuffer(env, bytes, (void **)&buf_data, &buf) == napi_ok &&
           (ends = make_typed(env, napi_uint32_array, count, 4, (void **)&ends_data)) &&
           (idx = make_typed(env, napi_uint32_array, count, 4, (void **)&idx_data)) &&
           (times = make_typed(env, napi_float64_array, count, 8, (void **)&times_data)) &&
           napi_create_array_with_length(env, nsenders, &senders) == napi_ok;
  size_t at = 0, k = 0;
  uint32_t s0 = 0;
  for (batch_t *b = first; ok && b; b = b->next) {
    memcpy(buf_data + at, b->bytes, b->used);
    for (uint32_t i = 0; i < b->count; i++, k++) {
      ends_data[k] = (uint32_t)(at + b->ends[i]);
      idx_data[k] = s0 + b->sender_idx[i];
      times_data[k] = b->times[i];
    }
    for (uint32_t i = 0; ok && i < b->nsenders; i++) {
      char text[INET6_ADDRSTRLEN];
      inet_ntop(b->senders[i].family, b->senders[i].addr, text, sizeof text);
      napi_value s;
      ok = napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &s) == napi_ok && napi_set_element(env, senders, s0 + i, s) == napi_ok;
    }
    at += b->used;
    s0 += b->nsenders;
  }
  ok = ok && napi_create_uint32(env, (uint32_t)bytes, &bytes_v) == napi_ok;
  ok = ok && napi_set_named_property(env, out, "buf", buf) == napi_ok && napi_set_named_property(env, out, "bytes", bytes_v) == napi_ok &&
       napi_set_named_property(env, out, "ends", ends) == napi_ok && napi_set_named_property(env, out, "senderIdx", idx) == napi_ok &&
       napi_set_named_property(env, out, "senders", senders) == napi_ok && napi_set_named_property(env, out, "times", times) == napi_ok;
  while (first) {
    batch_t *b = first;
    first = b->next;
    batch_free(b);
  }
  if (!ok) {
    /* out of memory in JavaScript: the datagrams are counted, not lost silently */
    atomic_fetch_add(&r->errors, count);
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (!pending) throw_code(env, "UDPRECV_INTERNAL", "could not hand a batch to JavaScript", 0, NULL);
    return NULL;
  }
  return out;
}

static int set_number(napi_env env, napi_value obj, const char *key, double value) {
  napi_value v;
  return napi_create_double(env, value, &v) == napi_ok && napi_set_named_property(env, obj, key, v) == napi_ok;
}

/* counters(): datagrams kept, and those dropped by reason; `queued` waits for take() */
static napi_value js_counters(napi_env env, napi_callback_info info) {
  receiver_t *r = self(env, info);
  if (!r) return NULL;
  napi_value out;
  CHECK(napi_create_object(env, &out));
  int ok = set_number(env, out, "received", (double)atomic_load(&r->received)) &&
           set_number(env, out, "backpressure", (double)atomic_load(&r->backpressure)) &&
           set_number(env, out, "empty", (double)atomic_load(&r->empty)) &&
           set_number(env, out, "tooLarge", (double)atomic_load(&r->too_large)) &&
           set_number(env, out, "error", (double)atomic_load(&r->errors)) &&
           set_number(env, out, "failures", (double)atomic_load(&r->failures)) &&
           set_number(env, out, "lastErrno", (double)atomic_load(&r->last_errno)) &&
           set_number(env, out, "queued", (double)(atomic_load(&r->queued))) &&
           set_number(env, out, "queuedBytes", (double)(atomic_load(&r->queued_memory)));
  if (!ok) return NULL;
  return out;
}

/* close(): the thread is joined and the socket closed; queued batches can still be taken */
static napi_value js_close(napi_env env, napi_callback_info info) {
  receiver_t *r = self(env, info);
  if (!r) return NULL;
  shut(r);
  if (r->hook_registered) {
    napi_remove_env_cleanup_hook(env, on_env_cleanup, r);
    r->hook_registered = 0;
  }
  return NULL;
}

static int get_prop(napi_env env, napi_value obj, const char *key, napi_valuetype want, napi_value *out) {
  bool has = false;
  if (napi_has_named_property(env, obj, key, &has) != napi_ok || !has) return 0;
  if (napi_get_named_property(env, obj, key, out) != napi_ok) return -1;
  napi_valuetype t;
  if (napi_typeof(env, *out, &t) != napi_ok) return -1;
  if (t == napi_undefined) return 0;
  return t == want ? 1 : -1;
}

/* a whole number in [lo, hi], or `dflt` when absent; -1 (thrown) when bad */
static int get_count(napi_env env, napi_value obj, const char *key, double lo, double hi, double dflt, double *out) {
  napi_value v;
  int has = get_prop(env, obj, key, napi_number, &v);
  if (has == 0) {
    *out = dflt;
    return 0;
  }
  double d = 0;
  if (has < 0 || napi_get_value_double(env, v, &d) != napi_ok || d != d || d < lo || d > hi || d != (double)(int64_t)d) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s must be a whole number from %.0f to %.0f", key, lo, hi);
    throw_code(env, "UDPRECV_BAD_ARGUMENT", msg, 0, NULL);
    return -1;
  }
  *out = d;
  return 0;
}

static napi_value fail_open(napi_env env, receiver_t *r, const char *code, const char *msg, int err, const char *syscall) {
  throw_code(env, code, msg, err, syscall);
  if (r) {
    if (r->fd >= 0) close(r->fd);
    if (r->wake_fd >= 0) close(r->wake_fd);
    if (r->tsfn) napi_release_threadsafe_function(r->tsfn, napi_tsfn_release);
    r->fd = r->wake_fd = -1;
    r->tsfn = NULL;
    release_receiver(r);
  }
  return NULL;
}

/*
 * open({ host, port, family: 4|6, recvBufferBytes, maxMessageBytes, maxQueued, maxQueuedBytes, batchBytes, flushMs }, onReadable)
 * → { address, port, family, inode, recvBufferBytes, recvBufferForced, take(), counters(), close() }
 */
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_valuetype t0 = napi_undefined, t1 = napi_undefined;
  if (argc >= 2) {
    napi_typeof(env, argv[0], &t0);
    napi_typeof(env, argv[1], &t1);
  }
  if (t0 != napi_object || t1 != napi_function) {
    throw_code(env, "UDPRECV_BAD_ARGUMENT", "open(options, onReadable): an object and a function", 0, NULL);
    return NULL;
  }
  napi_value o = argv[0], hv;
  char host[256];
  size_t hlen = 0;
  if (get_prop(env, o, "host", napi_string, &hv) != 1 || napi_get_value_string_utf8(env, hv, host, sizeof host, &hlen) != napi_ok || hlen == 0 ||
      hlen >= sizeof host - 1) {
    throw_code(env, "UDPRECV_BAD_ARGUMENT", "host must be a non-empty string", 0, NULL);
    return NULL;
  }
  double port, family, rcvbuf, max_message, max_queued, max_queued_memory, batch_bytes, flush_ms;
  if (get_count(env, o, "port", 0, 65535, -1, &port) < 0 || get_count(env, o, "family", 4, 6, 4, &family) < 0 ||
      get_count(env, o, "recvBufferBytes", 0, 2147483647.0 / 2, 0, &rcvbuf) < 0 ||
      get_count(env, o, "maxMessageBytes", 1, SLOT, SLOT, &max_message) < 0 ||
      get_count(env, o, "maxQueued", 1, 1e8, 100000, &max_queued) < 0 ||
      get_count(env, o, "maxQueuedBytes", 1 << 20, 1e12, 256.0 * (1 << 20), &max_queued_memory) < 0 ||
      get_count(env, o, "batchBytes", 4096, 64 << 20, 256 * 1024, &batch_bytes) < 0 ||
      get_count(env, o, "flushMs", 0, 60000, 5, &flush_ms) < 0)
    return NULL;
  if (port < 0 || (family != 4 && family != 6)) {
    throw_code(env, "UDPRECV_BAD_ARGUMENT", port < 0 ? "port is required" : "family must be 4 or 6", 0, NULL);
    return NULL;
  }

  receiver_t *r = calloc(1, sizeof *r);
  if (!r) return fail_open(env, NULL, "UDPRECV_INTERNAL", "out of memory", ENOMEM, NULL);
  r->fd = r->wake_fd = -1;
  pthread_mutex_init(&r->mu, NULL);
  r->max_queued = (size_t)max_queued;
  r->max_queued_memory = (size_t)max_queued_memory;
  r->batch_bytes = (size_t)batch_bytes;
  r->max_message = (size_t)max_message;
  r->flush_ms = flush_ms;
  r->scratch = malloc((size_t)VLEN * SLOT);
  if (!r->scratch) return fail_open(env, r, "UDPRECV_INTERNAL", "out of memory", ENOMEM, NULL);
  for (int i = 0; i < VLEN; i++) {
    r->iov[i].iov_base = r->scratch + (size_t)i * SLOT;
    r->iov[i].iov_len = SLOT;
    memset(&r->msgs[i], 0, sizeof r->msgs[i]);
    r->msgs[i].msg_hdr.msg_iov = &r->iov[i];
    r->msgs[i].msg_hdr.msg_iovlen = 1;
    r->msgs[i].msg_hdr.msg_name = &r->addrs[i];
  }

  struct addrinfo hints = {0}, *ai = NULL;
  hints.ai_family = family == 6 ? AF_INET6 : AF_INET;
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = AI_PASSIVE;
  char port_text[8];
  snprintf(port_text, sizeof port_text, "%d", (int)port);
  int gai = getaddrinfo(host, port_text, &hints, &ai);
  if (gai != 0 || !ai) {
    char msg[320];
    snprintf(msg, sizeof msg, "cannot resolve %s: %s", host, gai_strerror(gai));
    return fail_open(env, r, "UDPRECV_ADDRESS", msg, 0, NULL);
  }
  r->fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (r->fd < 0) {
    int e = errno;
    freeaddrinfo(ai);
    return fail_open(env, r, "UDPRECV_SOCKET", "socket", e, "socket");
  }
  if (ai->ai_family == AF_INET6) {
    int off = 0; /* dual stack, as node's udp6 */
    setsockopt(r->fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  }
  int forced = 0;
  if (rcvbuf > 0) {
    int want = (int)rcvbuf, got = 0;
    socklen_t gl = sizeof got;
    if (setsockopt(r->fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof want) != 0) {
      int e = errno;
      freeaddrinfo(ai);
      return fail_open(env, r, "UDPRECV_SOCKET", "SO_RCVBUF", e, "setsockopt");
    }
    getsockopt(r->fd, SOL_SOCKET, SO_RCVBUF, &got, &gl);
    /* Linux doubles what it grants; below that, net.core.rmem_max capped us: force it when permitted (CAP_NET_ADMIN) */
    if ((double)got < 2 * rcvbuf && setsockopt(r->fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof want) == 0) forced = 1;
  }
  if (bind(r->fd, ai->ai_addr, ai->ai_addrlen) != 0) {
    int e = errno;
    freeaddrinfo(ai);
    char msg[320];
    snprintf(msg, sizeof msg, "bind %s:%d", host, (int)port);
    return fail_open(env, r, "UDPRECV_BIND", msg, e, "bind");
  }
  freeaddrinfo(ai);

  struct sockaddr_storage local;
  socklen_t ll = sizeof local;
  getsockname(r->fd, (struct sockaddr *)&local, &ll);
  char local_text[INET6_ADDRSTRLEN] = "";
  int local_port = 0;
  if (local.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&local)->sin6_addr, local_text, sizeof local_text);
    local_port = ntohs(((struct sockaddr_in6 *)&local)->sin6_port);
  } else {
    inet_ntop(AF_INET, &((struct sockaddr_in *)&local)->sin_addr, local_text, sizeof local_text);
    local_port = ntohs(((struct sockaddr_in *)&local)->sin_port);
  }
  int granted = 0;
  socklen_t gl = sizeof granted;
  getsockopt(r->fd, SOL_SOCKET, SO_RCVBUF, &granted, &gl);
  struct stat st;
  double inode = fstat(r->fd, &st) == 0 ? (double)st.st_ino : -1;

  r->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (r->wake_fd < 0) return fail_open(env, r, "UDPRECV_SOCKET", "eventfd", errno, "eventfd");

  napi_value name;
  CHECK(napi_create_string_utf8(env, "udp_recv", NAPI_AUTO_LENGTH, &name));
  if (napi_create_threadsafe_function(env, argv[1], NULL, name, 0, 1, r, on_tsfn_finalize, r, call_js, &r->tsfn) != napi_ok) {
    r->tsfn = NULL;
    return fail_open(env, r, "UDPRECV_INTERNAL", "napi_create_threadsafe_function failed", 0, NULL);
  }
  r->tsfn_alive = 1;

  napi_value out;
  if (napi_create_object(env, &out) != napi_ok) return fail_open(env, r, "UDPRECV_INTERNAL", "napi_create_object failed", 0, NULL);
  napi_property_descriptor methods[] = {
    {"take", NULL, js_take, NULL, NULL, NULL, napi_default, NULL},
    {"counters", NULL, js_counters, NULL, NULL, NULL, napi_default, NULL},
    {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value addr_v;
  int ok = napi_define_properties(env, out, 3, methods) == napi_ok &&
           napi_create_string_utf8(env, local_text, NAPI_AUTO_LENGTH, &addr_v) == napi_ok &&
           napi_set_named_property(env, out, "address", addr_v) == napi_ok && set_number(env, out, "port", local_port) &&
           set_number(env, out, "family", local.ss_family == AF_INET6 ? 6 : 4) && set_number(env, out, "inode", inode) &&
           set_number(env, out, "recvBufferBytes", granted);
  napi_value forced_v;
  ok = ok && napi_get_boolean(env, forced, &forced_v) == napi_ok && napi_set_named_property(env, out, "recvBufferForced", forced_v) == napi_ok;
  if (!ok) return fail_open(env, r, "UDPRECV_INTERNAL", "could not build the receiver object", 0, NULL);

  int e = pthread_create(&r->thread, NULL, receive_loop, r);
  if (e != 0) return fail_open(env, r, "UDPRECV_THREAD", "pthread_create", e, "pthread_create");
  r->thread_running = 1;
  pthread_setname_np(r->thread, "udp-recv"); /* named before open() returns, not only from inside */
  /* from here on the finalizer owns r */
  if (napi_wrap(env, out, r, on_finalize, NULL, NULL) != napi_ok) {
    shut(r);
    release_receiver(r);
    throw_code(env, "UDPRECV_INTERNAL", "napi_wrap failed", 0, NULL);
    return NULL;
  }
  /* registered after the thread-safe function: hooks run in reverse order, so ours (stopping the thread) runs first */
  if (napi_add_env_cleanup_hook(env, on_env_cleanup, r) == napi_ok) r->hook_registered = 1;
  r->env = env;
  return out;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "open", NAPI_AUTO_LENGTH, js_open, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "open", fn) != napi_ok) return NULL;
  return exports;
}
