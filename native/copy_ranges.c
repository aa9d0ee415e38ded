/*
 * kiln_native: byte-range copies between files for the streaming checkpoint converter (src/weights/copy-ranges.ts).
 *
 * copyRanges(fdOut, dstBase, ranges[, kernel = true[, table[, map = false[, scan = 0]]]]) -> Promise<number>, where ranges is a
 * Float64Array of quadruples [fdIn, srcPos, dstOffset, length]: `length` bytes at `srcPos` of fdIn go to
 * `dstBase + dstOffset` of fdOut; fdIn = -1 writes `length` zero bytes instead. The ranges are copied into C
 * memory when called, then copied on libuv's thread pool, in order, and the promise settles when all are done or
 * at the first failure (rejected with an Error carrying errno's code, e.g. "ENOSPC", or "EOF" when a source ends
 * early, and `range`, the index of the range that failed).
 *
 * How bytes move, fastest first (measured in the bench/run.ts protocol on the 2-core benchmark VM, 2.25 GB BF16
 * checkpoint, tp=1, medians; cp -r of the same files 0.65-0.75 s in its fast phase):
 * - map: the destination was preallocated (preallocate() below), so the job maps the window it covers and reads
 *   each range straight into it: one copy, page offsets irrelevant, and no inode lock, so two jobs fill one file
 *   at once (0.80-0.93 s).
 * - copy_file_range(2) for ranges whose source and destination share their page offset (one in-kernel copy) and a
 *   256 KiB L2-resident buffer with pread/pwrite for the others, whose in-kernel copy shifts bytes within pages
 *   (1.4-1.7x slower than aligned; this split 1.06 s, copy_file_range for all 1.21 s, the buffer for all 1.88 s).
 * - kernel = false: the buffer for everything (tests use it; it is also what runs where the kernel refuses
 *   copy_file_range for a pair of files: EXDEV, EINVAL, ENOSYS, EOPNOTSUPP, and on systems without it).
 * The bytes written are the same on every path. Short copies and interrupted calls are retried; positions are
 * explicit, so no file offset is used or changed.
 *
 * With `table` (a Uint16Array of 65536 entries), every 16-bit little-endian word read is replaced by table[word]
 * before it lands: a BF16 <-> F16 cast on the thread pool with the table the JavaScript casts use (so the bits are
 * identical). Cast ranges never use copy_file_range, and their lengths must be even; zero ranges stay zeros
 * (callers check table[0] == 0).
 *
 * With `scan` (1: F16, 2: BF16, 3: F32, the dtype of the bytes as they land), the job also counts the non-finite
 * values (exponent bits all ones: Inf and NaN) among the bytes it writes, and the promise resolves with that count
 * (0 without scan). The count runs on bytes already in a core's cache: the bounce buffer, or the mapped window read
 * in SCAN_CHUNK pieces; only copy_file_range, which moves bytes without showing them, needs a second read of the
 * source (from the page cache it was just copied out of). The kiln numerics guard (src/weights/numerics.ts) turns
 * the count into an error naming the tensor.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

/* Small enough to stay in a core's L2 cache between the read and the write (1 MiB doubled the system time). */
#define BOUNCE_BYTES (256 << 10)
#define PAGE_BYTES 4096
/* Mapped copies that scan read this much at a time, so the scan finds the bytes in L2 (as the bounce buffer). */
#define SCAN_CHUNK (64 << 10)

typedef struct {
  int fd_out;
  int64_t dst_base;
  int kernel;           /* try copy_file_range first */
  uint16_t *table;      /* 65536 entries, or NULL: copy bytes as they are */
  int map;              /* the output is preallocated: write through a shared mapping */
  int scan;             /* 0, or count non-finite values of this kind among the bytes written: 1 F16, 2 BF16, 3 F32 */
  uint64_t nonfinite;   /* the count */
  size_t count;         /* ranges */
  double *ranges;       /* 4 * count */
  int err;              /* errno of the failure, 0 if none; -1: unexpected end of file */
  size_t err_range;     /* index of the range that failed */
  int64_t err_at;       /* source position (or destination position for writes) of the failure */
  napi_async_work work;
  napi_deferred deferred;
} CopyJob;

static const char zeros[1 << 16];

typedef uint16_t __attribute__((aligned(1), may_alias)) u16_any;
typedef uint32_t __attribute__((aligned(1), may_alias)) u32_any;

/* Values whose exponent bits are all ones (Inf, NaN) among `bytes` bytes of little-endian `scan`-kind floats. A
 * branch-free count that the compiler vectorizes; about as fast as reading the bytes from L2. */
__attribute__((optimize("O3"))) static uint64_t count_nonfinite(const char *p, size_t bytes, int scan) {
  uint64_t n = 0;
  if (scan == 3) {
    const u32_any *w = (const u32_any *)p;
    for (size_t i = 0, k = bytes / 4; i < k; i++) n += (w[i] & 0x7f800000u) == 0x7f800000u;
  } else if (scan) {
    const uint16_t m = scan == 1 ? 0x7c00 : 0x7f80;
    const u16_any *w = (const u16_any *)p;
    for (size_t i = 0, k = bytes / 2; i < k; i++) n += (uint16_t)(w[i] & m) == m;
  }
  return n;
}

typedef uint64_t __attribute__((aligned(1), may_alias)) u64_any;

/* The same count, fast when there is nothing to find (always, for a sane checkpoint): per 64-bit word,
 * (w & exponent mask) + (lowest exponent bit) sets each lane's sign bit exactly when that lane's exponent is all
 * ones, and no lane can carry into the next (a lane's sum is at most 0x8000 / 0x80000000). One OR per word,
 * vectorized; the exact count runs only when a sign bit shows up. */
__attribute__((optimize("O3"))) static uint64_t scan_nonfinite(const char *p, size_t bytes, int scan) {
  const uint64_t mask = scan == 3 ? 0x7f8000007f800000ull : scan == 1 ? 0x7c007c007c007c00ull : 0x7f807f807f807f80ull;
  const uint64_t low = scan == 3 ? 0x0080000000800000ull : scan == 1 ? 0x0400040004000400ull : 0x0080008000800080ull;
  const uint64_t sign = scan == 3 ? 0x8000000080000000ull : 0x8000800080008000ull;
  const u64_any *w = (const u64_any *)p;
  size_t k = bytes / 8;
  uint64_t acc = 0;
  for (size_t i = 0; i < k; i++) acc |= (w[i] & mask) + low;
  if (acc & sign) return count_nonfinite(p, bytes, scan);
  return count_nonfinite(p + 8 * k, bytes - 8 * k, scan);
}

static int write_all(int fd, const char *buf, size_t n, int64_t pos, int64_t *err_at) {
  while (n > 0) {
    ssize_t k = pwrite(fd, buf, n, (off_t)pos);
    if (k < 0) {
      if (errno == EINTR) continue;
      *err_at = pos;
      return errno;
    }
    buf += k;
    n -= (size_t)k;
    pos += k;
  }
  return 0;
}

/*
 * w[i] = table[w[i]] in place. Eight words are loaded before any is stored: a plain loop's store may alias the
 * next load (both are uint16_t), which serializes the lookups (measured 25% slower end to end than the
 * JavaScript kernel, which reads four words ahead the same way).
 */
static void cast_words(uint16_t *w, size_t n, const uint16_t *table) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint16_t a = w[i], b = w[i + 1], c = w[i + 2], d = w[i + 3], e = w[i + 4], f = w[i + 5], g = w[i + 6], h = w[i + 7];
    w[i] = table[a], w[i + 1] = table[b], w[i + 2] = table[c], w[i + 3] = table[d];
    w[i + 4] = table[e], w[i + 5] = table[f], w[i + 6] = table[g], w[i + 7] = table[h];
  }
  for (; i < n; i++) w[i] = table[w[i]];
}

/* pread/pwrite through a bounce buffer (allocated on first use), translating 16-bit words through `table` if set. */
static int bounce_copy(int in, int64_t src, int out, int64_t dst, int64_t len, char **buf, const uint16_t *table, int scan, uint64_t *nonfinite, int64_t *err_at) {
  if (!*buf && !(*buf = malloc(BOUNCE_BYTES))) return ENOMEM;
  while (len > 0) {
    size_t want = len < BOUNCE_BYTES ? (size_t)len : BOUNCE_BYTES;
    ssize_t got = pread(in, *buf, want, (off_t)src);
    if (got < 0) {
      if (errno == EINTR) continue;
      *err_at = src;
      return errno;
    }
    /* A cast handles whole words: an odd short read leaves its last byte for the next read. */
    if (table) got -= got % 2;
    if (got == 0) {
      *err_at = src;
      return -1;
    }
    if (table) cast_words((uint16_t *)*buf, (size_t)got / 2, table);
    if (scan) *nonfinite += scan_nonfinite(*buf, (size_t)got, scan);
    int e = write_all(out, *buf, (size_t)got, dst, err_at);
    if (e) return e;
    src += got;
    dst += got;
    len -= got;
  }
  return 0;
}

static int read_all(int in, char *p, int64_t src, int64_t len, int64_t *err_at);

/* The scan of bytes copy_file_range moved: read back from the source (page cache) through the bounce buffer. */
static int scan_source(int in, int64_t src, int64_t len, char **buf, int scan, uint64_t *nonfinite, int64_t *err_at) {
  if (!*buf && !(*buf = malloc(BOUNCE_BYTES))) return ENOMEM;
  while (len > 0) {
    int64_t want = len < BOUNCE_BYTES ? len : BOUNCE_BYTES;
    int e = read_all(in, *buf, src, want, err_at);
    if (e) return e;
    *nonfinite += scan_nonfinite(*buf, (size_t)want, scan);
    src += want;
    len -= want;
  }
  return 0;
}

/* copy_file_range while the kernel accepts it; the rest through the bounce buffer. */
static int copy_range(int in, int64_t src, int out, int64_t dst, int64_t len, int *kernel_ok, char **buf, const uint16_t *table, int scan, uint64_t *nonfinite, int64_t *err_at) {
#ifdef __linux__
  while (len > 0 && *kernel_ok) {
    loff_t s = src, d = dst;
    ssize_t k = copy_file_range(in, &s, out, &d, (size_t)len, 0);
    if (k < 0) {
      if (errno == EINTR) continue;
      if (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP) {
        *kernel_ok = 0;
        break;
      }
      *err_at = src;
      return errno;
    }
    if (k == 0) {
      *err_at = src;
      return -1;
    }
    if (scan) {
      int e = scan_source(in, src, k, buf, scan, nonfinite, err_at);
      if (e) return e;
    }
    src += k;
    dst += k;
    len -= k;
  }
#else
  *kernel_ok = 0;
#endif
  return len > 0 ? bounce_copy(in, src, out, dst, len, buf, table, scan, nonfinite, err_at) : 0;
}

/* Reads exactly `len` bytes at `src` into `p`. */
static int read_all(int in, char *p, int64_t src, int64_t len, int64_t *err_at) {
  while (len > 0) {
    ssize_t got = pread(in, p, (size_t)len, (off_t)src);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      *err_at = src;
      return got < 0 ? errno : -1;
    }
    p += got;
    src += got;
    len -= got;
  }
  return 0;
}

/*
 * The whole job through one shared mapping of the destination window it covers: each range is read straight
 * into the destination's page cache (one copy, whatever the page offsets), zeros are stored, casts run in place.
 * Writes through a mapping take no inode lock, so two jobs fill one file at once. Only for preallocated files
 * (fallocate: blocks reserved, size final), so a store can neither extend the file nor run out of space.
 * Returns 0 when no mapping could be made (the caller then copies the other way).
 */
static int map_copy(CopyJob *job) {
  int64_t lo = INT64_MAX, hi = 0;
  for (size_t i = 0; i < job->count; i++) {
    const double *r = job->ranges + 4 * i;
    int64_t d = job->dst_base + (int64_t)r[2];
    if (d < lo) lo = d;
    if (d + (int64_t)r[3] > hi) hi = d + (int64_t)r[3];
  }
  if (hi <= lo) return 0;
  int64_t page = sysconf(_SC_PAGESIZE);
  int64_t start = lo - lo % page;
  struct stat st;
  if (fstat(job->fd_out, &st) != 0 || st.st_size < hi) return 0;
  char *m = mmap(NULL, (size_t)(hi - start), PROT_READ | PROT_WRITE, MAP_SHARED, job->fd_out, (off_t)start);
  if (m == MAP_FAILED) return 0;
  for (size_t i = 0; i < job->count && !job->err; i++) {
    const double *r = job->ranges + 4 * i;
    char *p = m + (job->dst_base + (int64_t)r[2] - start);
    int64_t len = (int64_t)r[3];
    if (r[0] < 0) memset(p, 0, (size_t)len);
    else if (!job->scan) {
      if (!(job->err = read_all((int)r[0], p, (int64_t)r[1], len, &job->err_at)) && job->table) cast_words((uint16_t *)p, (size_t)len / 2, job->table);
    } else
      for (int64_t at = 0; at < len && !job->err; at += SCAN_CHUNK) {
        int64_t n = len - at < SCAN_CHUNK ? len - at : SCAN_CHUNK;
        if ((job->err = read_all((int)r[0], p + at, (int64_t)r[1] + at, n, &job->err_at))) break;
        if (job->table) cast_words((uint16_t *)(p + at), (size_t)n / 2, job->table);
        job->nonfinite += scan_nonfinite(p + at, (size_t)n, job->scan);
      }
    job->err_range = i;
  }
  munmap(m, (size_t)(hi - start));
  return 1;
}

static void execute(napi_env env, void *data) {
  (void)env;
  CopyJob *job = data;
  if (job->map && map_copy(job)) return;
  int kernel_ok = job->kernel && !job->table;
  char *buf = NULL;
  for (size_t i = 0; i < job->count && !job->err; i++) {
    const double *r = job->ranges + 4 * i;
    int64_t dst = job->dst_base + (int64_t)r[2], len = (int64_t)r[3];
    if (r[0] < 0) {
      while (len > 0 && !job->err) {
        size_t n = len < (int64_t)sizeof zeros ? (size_t)len : sizeof zeros;
        job->err = write_all(job->fd_out, zeros, n, dst, &job->err_at);
        dst += (int64_t)n;
        len -= (int64_t)n;
      }
    } else {
      /* The kernel only where source and destination share their page offset; see the header. */
      int aligned = (((int64_t)r[1] - dst) & (PAGE_BYTES - 1)) == 0;
      int use_kernel = kernel_ok && aligned;
      job->err = copy_range((int)r[0], (int64_t)r[1], job->fd_out, dst, len, &use_kernel, &buf, job->table, job->scan, &job->nonfinite, &job->err_at);
      if (kernel_ok && aligned && !use_kernel) kernel_ok = 0; /* the kernel refused these files: buffer from now on */
    }
    job->err_range = i;
  }
  free(buf);
}

static void complete(napi_env env, napi_status status, void *data) {
  CopyJob *job = data;
  if (status == napi_ok && job->err == 0) {
    napi_value count;
    napi_create_double(env, (double)job->nonfinite, &count);
    napi_resolve_deferred(env, job->deferred, count);
  } else {
    char msg[160];
    const char *code = job->err == -1 ? "EOF" : "EIO";
    if (job->err == -1) snprintf(msg, sizeof msg, "unexpected end of file at byte %lld", (long long)job->err_at);
    else if (status != napi_ok) snprintf(msg, sizeof msg, "copy was cancelled");
    else snprintf(msg, sizeof msg, "%s at byte %lld", strerror(job->err), (long long)job->err_at);
    napi_value code_v, msg_v, error, range_v;
    /* strerrorname_np needs glibc 2.32; the numeric errno is enough to name the common ones. */
    static const struct { int no; const char *name; } names[] = {
      {ENOSPC, "ENOSPC"}, {EIO, "EIO"}, {EBADF, "EBADF"}, {EFBIG, "EFBIG"}, {EDQUOT, "EDQUOT"}, {ENOMEM, "ENOMEM"}, {EISDIR, "EISDIR"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
      if (names[i].no == job->err) code = names[i].name;
    napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_v);
    napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &msg_v);
    napi_create_error(env, code_v, msg_v, &error);
    napi_create_int64(env, (int64_t)job->err_range, &range_v);
    napi_set_named_property(env, error, "range", range_v);
    napi_reject_deferred(env, job->deferred, error);
  }
  napi_delete_async_work(env, job->work);
  free(job->table);
  free(job->ranges);
  free(job);
}

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

static napi_value copy_ranges(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 3) return throw_type(env, "copyRanges(fdOut, dstBase, ranges[, kernel[, table[, map[, scan]]]]) takes 3 to 7 arguments");
  int32_t scan = 0;
  if (argc >= 7 && (napi_get_value_int32(env, argv[6], &scan) != napi_ok || scan < 0 || scan > 3)) return throw_type(env, "copyRanges: scan must be 0 (none), 1 (F16), 2 (BF16) or 3 (F32)");
  bool map = false;
  if (argc >= 6 && napi_get_value_bool(env, argv[5], &map) != napi_ok) return throw_type(env, "copyRanges: map must be a boolean");
  bool kernel = true;
  if (argc >= 4 && napi_get_value_bool(env, argv[3], &kernel) != napi_ok) return throw_type(env, "copyRanges: kernel must be a boolean");
  void *table_values = NULL;
  napi_valuetype table_type = napi_undefined;
  if (argc >= 5) napi_typeof(env, argv[4], &table_type);
  if (table_type != napi_undefined && table_type != napi_null) {
    bool is_table;
    napi_typedarray_type ttype;
    size_t tlength = 0;
    napi_is_typedarray(env, argv[4], &is_table);
    if (is_table) napi_get_typedarray_info(env, argv[4], &ttype, &tlength, &table_values, NULL, NULL);
    if (!is_table || ttype != napi_uint16_array || tlength != 65536) return throw_type(env, "copyRanges: table must be a Uint16Array of 65536 entries");
  }
  int32_t fd_out;
  int64_t dst_base;
  if (napi_get_value_int32(env, argv[0], &fd_out) != napi_ok || fd_out < 0) return throw_type(env, "copyRanges: fdOut must be a file descriptor");
  if (napi_get_value_int64(env, argv[1], &dst_base) != napi_ok || dst_base < 0) return throw_type(env, "copyRanges: dstBase must be a non-negative integer");
  bool is_typed;
  napi_is_typedarray(env, argv[2], &is_typed);
  if (!is_typed) return throw_type(env, "copyRanges: ranges must be a Float64Array");
  napi_typedarray_type type;
  size_t length;
  void *values;
  napi_get_typedarray_info(env, argv[2], &type, &length, &values, NULL, NULL);
  if (type != napi_float64_array || length % 4 != 0) return throw_type(env, "copyRanges: ranges must be a Float64Array of [fdIn, srcPos, dstOffset, length] quadruples");
  for (size_t i = 0; i < length; i++) {
    double v = ((double *)values)[i];
    if (v != (double)(int64_t)v || (v < 0 && !(i % 4 == 0 && v == -1)) || v > 9007199254740991.0) return throw_type(env, "copyRanges: every range value must be a non-negative integer (fdIn may be -1)");
    if (table_values && i % 4 == 3 && (int64_t)v % 2) return throw_type(env, "copyRanges: with a table, every range length must be even");
  }
  CopyJob *job = calloc(1, sizeof *job);
  if (!job || !(job->ranges = malloc(length ? length * sizeof(double) : 1))) {
    free(job);
    napi_throw_error(env, "ENOMEM", "copyRanges: out of memory");
    return NULL;
  }
  memcpy(job->ranges, values, length * sizeof(double));
  if (table_values) {
    if (!(job->table = malloc(65536 * sizeof(uint16_t)))) {
      free(job->ranges);
      free(job);
      napi_throw_error(env, "ENOMEM", "copyRanges: out of memory");
      return NULL;
    }
    memcpy(job->table, table_values, 65536 * sizeof(uint16_t));
  }
  job->fd_out = fd_out;
  job->kernel = kernel;
  job->map = map;
  job->scan = scan;
  job->dst_base = dst_base;
  job->count = length / 4;
  napi_value promise, name;
  napi_create_promise(env, &job->deferred, &promise);
  napi_create_string_utf8(env, "kiln.copyRanges", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, execute, complete, job, &job->work);
  napi_queue_async_work(env, job->work);
  return promise;
}

/*
 * preallocate(fd, size) -> boolean: reserves the blocks of a file of `size` bytes and sets its size (fallocate),
 * so it can be written through mappings. false where the file system cannot (the caller writes the usual way);
 * throws with errno's name (e.g. ENOSPC: the disk cannot hold the file, known before a byte is copied).
 */
static napi_value preallocate(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  int64_t size;
  if (argc != 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int64(env, argv[1], &size) != napi_ok || fd < 0 || size < 0) {
    return throw_type(env, "preallocate(fd, size) takes a file descriptor and a non-negative size");
  }
  bool ok = false;
#ifdef __linux__
  int e = 0;
  while ((e = fallocate(fd, 0, 0, (off_t)size) ? errno : 0) == EINTR) {}
  if (e && e != EOPNOTSUPP && e != ENOSYS && e != EINVAL) {
    char msg[160];
    snprintf(msg, sizeof msg, "cannot reserve %lld bytes: %s", (long long)size, strerror(e));
    napi_throw_error(env, e == ENOSPC ? "ENOSPC" : e == EDQUOT ? "EDQUOT" : e == EFBIG ? "EFBIG" : "EIO", msg);
    return NULL;
  }
  ok = e == 0;
#endif
  napi_get_boolean(env, ok, &result);
  return result;
}

/*
 * countNonFinite(bytes: Uint8Array, kind: 1 F16 | 2 BF16 | 3 F32) -> number: the Inf/NaN count of scan_nonfinite on
 * a block the converter holds in memory (synchronous: about 10x the speed of the JavaScript loop, so a block costs
 * the main thread a few microseconds).
 */
static napi_value count_nonfinite_js(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  bool is_typed = false;
  int32_t kind = 0;
  if (argc == 2) napi_is_typedarray(env, argv[0], &is_typed);
  if (!is_typed || napi_get_value_int32(env, argv[1], &kind) != napi_ok || kind < 1 || kind > 3) return throw_type(env, "countNonFinite(bytes: Uint8Array, kind: 1 | 2 | 3)");
  napi_typedarray_type type;
  size_t length;
  void *data;
  napi_get_typedarray_info(env, argv[0], &type, &length, &data, NULL, NULL);
  if (type != napi_uint8_array) return throw_type(env, "countNonFinite: bytes must be a Uint8Array");
  napi_create_double(env, (double)scan_nonfinite((const char *)data, length, kind), &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "countNonFinite", NAPI_AUTO_LENGTH, count_nonfinite_js, NULL, &fn);
  napi_set_named_property(env, exports, "countNonFinite", fn);
  napi_create_function(env, "copyRanges", NAPI_AUTO_LENGTH, copy_ranges, NULL, &fn);
  napi_set_named_property(env, exports, "copyRanges", fn);
  napi_create_function(env, "preallocate", NAPI_AUTO_LENGTH, preallocate, NULL, &fn);
  napi_set_named_property(env, exports, "preallocate", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
