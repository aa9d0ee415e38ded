/*
 * kiln_gemm: the interpreter's fast float32 kernels (src/interp/fast/native.ts loads it; the JS kernels in
 * src/interp/kernels.ts stay the reference these are tested against).
 *
 * linear(x, w, bias|null, out, rows, inF, outF)         out[r,o] = bias[o] + sum_i x[r,i] * w[o,i]
 * matmul(a, b, out, batch, m, k, n, offA, offB)          out[t] = a[offA[t]] (m x k) @ b[offB[t]] (k x n), per batch t
 * attention(q, k, v, out, b, s, h, kvh, sk, d, dv, scale, causal)   grouped-query SDPA, [b, s, heads, dim] layouts
 * threads() -> the worker count (KILN_THREADS, else the online cores)
 * sum(x) -> the sum of x, read once on the threads: the bench's memory-bandwidth probe
 *
 * One kernel does all the arithmetic: C = A . B^T with both operands contiguous along k (a linear's weight rows, a
 * transposed matmul operand, attention's keys), vectorized along k with GCC vector types. Register tiles of
 * MR rows of A x NR rows of B, each over the whole k (one horizontal sum per output element; NR rows of B stay
 * in L1 while every row tile of an MC-row block of A passes over them); work is split over column blocks on plain pthreads (one per core, the caller being one of them).
 *
 * Invariants (tested): every output element is computed by the same sequence of operations whatever the shape
 * of the call around it (row count, tile position, thread split), so a row's result does not depend on the other
 * rows; this is what makes KV-cached generation bit-identical to a full recompute. Runtime CPU dispatch: one
 * build runs on any x86-64 (AVX-512, AVX2+FMA, or baseline SSE clones chosen when loaded) or arm64 (NEON).
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NB 48  /* column block: the unit of work handed to a thread */
#define MC 96  /* row block: the rows of A a column block is swept over while its B rows stay in L2 */

/* ---------------------------------------------------------------- threads */

typedef void (*WorkFn)(void *ctx, long item);

static int thread_count(void) {
  static int n = 0;
  if (n == 0) {
    const char *env = getenv("KILN_THREADS");
    long v = env ? strtol(env, NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);
    n = v < 1 ? 1 : v > 256 ? 256 : (int)v;
  }
  return n;
}

/*
 * A persistent pool of thread_count() - 1 workers, started on the first parallel job. A decode step makes ~60
 * kernel calls of 10-500 us each, so creating threads per call (as this file first did) cost more than some
 * calls. Items are claimed from one 64-bit word, (job generation << 32) | next item, by compare-and-swap, so a
 * worker that wakes late can never take an item of a finished or later job; the caller waits only for items to
 * be done, not for every worker to show up (on a loaded machine a sleeping worker may be scheduled much later).
 * Generations are even while a job is open; the caller makes the word odd (closed) before it rewrites the job's
 * fields and even again after, so a late worker that read a new field still fails its compare-and-swap (all
 * sequentially consistent). Workers spin briefly (the next call often comes within microseconds) and then sleep
 * on a condition variable, so an idle process costs no CPU; the caller spins longer for items in flight on a
 * running worker. One job at a time (call_mu): Node calls from its main thread, but worker_threads could load
 * the addon too.
 */
#define SPIN_ITERS 2000 /* ~5-10 us of pause instructions before a worker sleeps (longer spins cost the whole machine when it is oversubscribed) */
static struct {
  pthread_mutex_t call_mu, mu;
  pthread_cond_t wake, done_cv;
  WorkFn fn;
  void *ctx;
  long items;     /* (atomic) */
  uint64_t claim; /* (generation << 32) | next item index (atomic); odd generation: a job is being set up */
  long done;      /* items finished in the current job (atomic) */
  int started;
} pool = {.call_mu = PTHREAD_MUTEX_INITIALIZER, .mu = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER,
          .done_cv = PTHREAD_COND_INITIALIZER};

static inline void cpu_relax(void) {
#if defined(__x86_64__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

#define SC __ATOMIC_SEQ_CST
static inline uint32_t gen_of(uint64_t c) { return (uint32_t)(c >> 32); }

/* Runs items of job `gen` until none is left. */
static void run_items(uint32_t gen) {
  for (;;) {
    uint64_t c = __atomic_load_n(&pool.claim, SC);
    if (gen_of(c) != gen) return;
    long items = __atomic_load_n(&pool.items, SC);
    if ((long)(uint32_t)c >= items) return;
    if (!__atomic_compare_exchange_n(&pool.claim, &c, c + 1, 0, SC, SC)) continue;
    /* the item is ours and unfinished, so the job (fn, ctx, items) cannot change under us */
    pool.fn(pool.ctx, (long)(uint32_t)c);
    if (__atomic_add_fetch(&pool.done, 1, SC) == items) {
      pthread_mutex_lock(&pool.mu);
      pthread_cond_signal(&pool.done_cv);
      pthread_mutex_unlock(&pool.mu);
      return;
    }
  }
}

/* A job to join: an open (even) generation this worker has not run yet. */
static inline int joinable(uint32_t g, uint32_t seen) { return g != seen && !(g & 1); }

static void *pool_worker(void *arg) {
  (void)arg;
  uint32_t seen = 0;
  for (;;) {
    uint32_t g = gen_of(__atomic_load_n(&pool.claim, SC));
    for (int spin = 0; !joinable(g, seen) && spin < SPIN_ITERS; spin++) {
      cpu_relax();
      g = gen_of(__atomic_load_n(&pool.claim, SC));
    }
    if (!joinable(g, seen)) {
      pthread_mutex_lock(&pool.mu);
      while (!joinable(g = gen_of(__atomic_load_n(&pool.claim, SC)), seen)) pthread_cond_wait(&pool.wake, &pool.mu);
      pthread_mutex_unlock(&pool.mu);
    }
    seen = g;
    run_items(g);
  }
  return NULL;
}

static void start_workers(void) {
  pool.started = 1;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  for (int i = 1; i < thread_count(); i++) {
    pthread_t t;
    pthread_create(&t, &attr, pool_worker, NULL); /* a worker that fails to start leaves more items to the others */
  }
  pthread_attr_destroy(&attr);
}

/* Runs fn(ctx, 0..items-1) on the pool and the caller; small jobs (below ~1M flops and ~256 KB of operand
   bytes: a GEMV is memory-bound, so a second thread pays off at fewer flops) stay on the caller. */
static void parallel_for(long items, double flops, double bytes, WorkFn fn, void *ctx) {
  if (items <= 0) return;
  if (items == 1 || thread_count() == 1 || (flops < 1e6 && bytes < 256e3) || items > 0x7fffffffL) {
    for (long i = 0; i < items; i++) fn(ctx, i);
    return;
  }
  pthread_mutex_lock(&pool.call_mu);
  if (!pool.started) start_workers();
  uint32_t gen = gen_of(__atomic_load_n(&pool.claim, SC)) + 2; /* even: the previous job's, plus two */
  __atomic_store_n(&pool.claim, (uint64_t)(gen - 1) << 32, SC); /* closed while the fields change */
  pool.fn = fn;
  pool.ctx = ctx;
  __atomic_store_n(&pool.items, items, SC);
  __atomic_store_n(&pool.done, 0, SC);
  pthread_mutex_lock(&pool.mu);
  __atomic_store_n(&pool.claim, (uint64_t)gen << 32, SC);
  pthread_cond_broadcast(&pool.wake);
  pthread_mutex_unlock(&pool.mu);
  run_items(gen);
  for (int spin = 0; __atomic_load_n(&pool.done, SC) != items && spin < 10 * SPIN_ITERS; spin++) cpu_relax();
  if (__atomic_load_n(&pool.done, SC) != items) {
    pthread_mutex_lock(&pool.mu);
    while (__atomic_load_n(&pool.done, SC) != items) pthread_cond_wait(&pool.done_cv, &pool.mu);
    pthread_mutex_unlock(&pool.mu);
  }
  pthread_mutex_unlock(&pool.call_mu);
}

/* ---------------------------------------------------------------- the kernel, once per vector width */

/*
 * GEMM_NT(name, VW, MR, NR): C[i,j] = bias[j] + sum_p A[i*lda+p] * B[j*ldb+p] for a column range, all rows.
 * The per-element arithmetic is fixed: VW float lanes accumulated over k in order, then in double: the lanes
 * summed pairwise, the scalar k tail (exact products) and the bias (or 0) added, and the sum rounded once.
 */
#define GEMM_NT(NAME, VW, MR, NR, ATTR)                                                                          \
  typedef float NAME##_v __attribute__((vector_size(VW * 4)));                                                 \
  ATTR static inline NAME##_v NAME##_ld(const float *p) {                                                      \
    NAME##_v v;                                                                                                \
    memcpy(&v, p, sizeof v);                                                                                   \
    return v;                                                                                                  \
  }                                                                                                            \
  ATTR static inline double NAME##_hsum(NAME##_v v) {                                                          \
    double lane[VW];                                                                                           \
    for (int l = 0; l < VW; l++) lane[l] = v[l];                                                               \
    for (int w = VW / 2; w >= 1; w /= 2)                                                                       \
      for (int l = 0; l < w; l++) lane[l] = lane[l] + lane[l + w];                                             \
    return lane[0];                                                                                            \
  }                                                                                                            \
  ATTR static inline __attribute__((always_inline)) void NAME##_tile(int mr, int nr, long kc, const float *A,   \
                                                                     long lda, const float *B, long ldb,       \
                                                                     float *C, long ldc, int first,            \
                                                                     const float *bias) {                      \
    NAME##_v acc[MR][NR];                                                                                      \
    for (int i = 0; i < MR; i++)                                                                               \
      for (int j = 0; j < NR; j++) acc[i][j] = (NAME##_v){0};                                                  \
    long p = 0;                                                                                                \
    for (; p + VW <= kc; p += VW) {                                                                            \
      NAME##_v b[NR];                                                                                          \
      for (int j = 0; j < nr; j++) {                                                                           \
        __builtin_prefetch(B + j * ldb + p + 8 * VW);                                                          \
        b[j] = NAME##_ld(B + j * ldb + p);                                                                     \
      }                                                                                                        \
      for (int i = 0; i < mr; i++) {                                                                           \
        NAME##_v a = NAME##_ld(A + i * lda + p);                                                               \
        for (int j = 0; j < nr; j++) acc[i][j] += a * b[j];                                                    \
      }                                                                                                        \
    }                                                                                                          \
    for (int i = 0; i < mr; i++)                                                                               \
      for (int j = 0; j < nr; j++) {                                                                           \
        double s = NAME##_hsum(acc[i][j]);                                                                     \
        for (long q = p; q < kc; q++) s += (double)A[i * lda + q] * B[j * ldb + q];                            \
        float *c = C + i * ldc + j;                                                                            \
        *c = (float)(first ? (bias ? bias[j] : 0.0) + s : *c + s);                                             \
      }                                                                                                        \
  }                                                                                                            \
  ATTR static void NAME##_tile_any(int mr, int nr, long kc, const float *A, long lda, const float *B, long ldb, \
                                   float *C, long ldc, int first, const float *bias) {                         \
    if (mr == MR && nr == NR) NAME##_tile(MR, NR, kc, A, lda, B, ldb, C, ldc, first, bias);                    \
    else if (mr == 1 && nr == NR) NAME##_tile(1, NR, kc, A, lda, B, ldb, C, ldc, first, bias);                 \
    else NAME##_tile(mr, nr, kc, A, lda, B, ldb, C, ldc, first, bias);                                         \
  }                                                                                                            \
  /* columns [j0, j1) of C, all M rows: per NR rows of B (read as sequential streams, which the prefetcher      \
     follows, and then reused from L1 for every row tile of the MC-row block of A, which sits in L2) */                                                                      \
  ATTR static void NAME##_cols(long M, long j0, long j1, long K, const float *A, long lda, const float *B,      \
                               long ldb, float *C, long ldc, const float *bias) {                              \
    for (long i0 = 0; i0 < M; i0 += MC) {                                                                      \
      long i1 = i0 + MC < M ? i0 + MC : M;                                                                     \
      for (long j = j0; j < j1; j += NR) {                                                                     \
        int nr = j1 - j < NR ? (int)(j1 - j) : NR;                                                             \
        for (long i = i0; i < i1; i += MR) {                                                                   \
          int mr = i1 - i < MR ? (int)(i1 - i) : MR;                                                           \
          NAME##_tile_any(mr, nr, K, A + i * lda, lda, B + j * ldb, ldb, C + i * ldc + j, ldc, 1,                \
                          bias ? bias + j : NULL);                                                             \
        }                                                                                                      \
      }                                                                                                        \
    }                                                                                                          \
  }

#if defined(__x86_64__) && !defined(KILN_GEMM_PORTABLE) /* KILN_GEMM_PORTABLE: build the arm64 path anywhere */
GEMM_NT(g512, 16, 6, 4, __attribute__((target("avx512f,avx512vl,avx2,fma"))))
GEMM_NT(g256, 8, 4, 3, __attribute__((target("avx2,fma"))))
GEMM_NT(gsse, 4, 4, 3, )
typedef void (*ColsFn)(long, long, long, long, const float *, long, const float *, long, float *, long, const float *);
static ColsFn pick_cols(void) {
  static ColsFn f = NULL;
  if (!f) {
    __builtin_cpu_init();
    const char *force = getenv("KILN_GEMM_ISA"); /* tests: run a narrower path on a wider CPU */
    int allow512 = !force || strcmp(force, "avx512") == 0, allow256 = !force || strcmp(force, "sse") != 0;
    if (allow512 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")) f = g512_cols;
    else if (allow256 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) f = g256_cols;
    else f = gsse_cols;
  }
  return f;
}
#else
GEMM_NT(gneon, 4, 4, 4, )
typedef void (*ColsFn)(long, long, long, long, const float *, long, const float *, long, float *, long, const float *);
static ColsFn pick_cols(void) { return gneon_cols; }
#endif

/* ---------------------------------------------------------------- C = A . B^T on the threads */

typedef struct {
  ColsFn cols;
  long M, N, K;
  const float *A, *B, *bias;
  long lda, ldb, ldc;
  float *C;
} NtJob;

static void nt_item(void *ctx, long item) {
  NtJob *j = ctx;
  long j0 = item * NB, j1 = j0 + NB < j->N ? j0 + NB : j->N;
  j->cols(j->M, j0, j1, j->K, j->A, j->lda, j->B, j->ldb, j->C, j->ldc, j->bias);
}

static void gemm_nt(long M, long N, long K, const float *A, long lda, const float *B, long ldb, float *C, long ldc,
                    const float *bias) {
  NtJob job = {pick_cols(), M, N, K, A, B, bias, lda, ldb, ldc, C};
  parallel_for((N + NB - 1) / NB, 2.0 * M * N * K, 4.0 * (N + M) * K, nt_item, &job);
}

/* ---------------------------------------------------------------- batched matmul */

typedef struct {
  ColsFn cols;
  long m, k, n;
  const float *a, *b;
  const int32_t *offA, *offB;
  float *out;
  float *bt; /* per batch item: b transposed to n x k */
} MmJob;

static void mm_transpose(void *ctx, long t) {
  MmJob *j = ctx;
  const float *b = j->b + (long)j->offB[t] * j->k * j->n;
  float *bt = j->bt + t * j->k * j->n;
  for (long p = 0; p < j->k; p++)
    for (long c = 0; c < j->n; c++) bt[c * j->k + p] = b[p * j->n + c];
}

static void mm_item(void *ctx, long t) {
  MmJob *j = ctx;
  j->cols(j->m, 0, j->n, j->k, j->a + (long)j->offA[t] * j->m * j->k, j->k, j->bt + t * j->k * j->n, j->k,
          j->out + t * j->m * j->n, j->n, NULL);
}

/* ---------------------------------------------------------------- attention */

typedef struct {
  ColsFn cols;
  long b, s, h, kvh, sk, d, dv;
  float scale;
  int causal;
  const float *q, *k, *v;
  float *out;
} AttJob;

/* One (batch, head): scores = q k^T through the shared kernel, softmax over the visible keys, then p v. */
static void att_item(void *ctx, long item) {
  AttJob *j = ctx;
  long bi = item / j->h, hi = item % j->h, kh = hi / (j->h / j->kvh);
  long s = j->s, sk = j->sk, d = j->d, dv = j->dv;
  float *scores = malloc(sizeof(float) * (size_t)(s * sk > 0 ? s * sk : 1));
  double *p = malloc(sizeof(double) * (size_t)(sk > 0 ? sk : 1));
  double *acc = malloc(sizeof(double) * (size_t)(dv > 0 ? dv : 1));
  if (!scores || !p || !acc) abort();
  const float *q = j->q + (bi * s * j->h + hi) * d;
  const float *k = j->k + (bi * sk * j->kvh + kh) * d;
  const float *v = j->v + (bi * sk * j->kvh + kh) * dv;
  j->cols(s, 0, sk, d, q, j->h * d, k, j->kvh * d, scores, sk, NULL);
  for (long i = 0; i < s; i++) {
    long last = j->causal ? (i + (sk - s) < sk - 1 ? i + (sk - s) : sk - 1) : sk - 1;
    double max = -INFINITY, sum = 0;
    for (long c = 0; c <= last; c++) {
      double x = (double)scores[i * sk + c] * j->scale;
      p[c] = x;
      if (x > max) max = x;
    }
    for (long c = 0; c <= last; c++) sum += p[c] = exp(p[c] - max);
    for (long c = 0; c < dv; c++) acc[c] = 0;
    for (long c = 0; c <= last; c++) {
      const float *vr = v + c * j->kvh * dv;
      double w = p[c];
      for (long e = 0; e < dv; e++) acc[e] += w * vr[e];
    }
    float *o = j->out + ((bi * s + i) * j->h + hi) * dv;
    for (long e = 0; e < dv; e++) o[e] = (float)(acc[e] / sum);
  }
  free(scores);
  free(p);
  free(acc);
}

/* ---------------------------------------------------------------- memory-bandwidth probe */

/* sum(x): a bare streaming read of x on the pool, for the bench's floor of a decode step (bench/interp.ts): the
   same bytes a step's weights occupy, read with nothing else to do. Not used by the kernels. */
typedef float SumV __attribute__((vector_size(32)));
#define SUM_CHUNK (1L << 18) /* floats per item: 1 MiB */
typedef struct {
  const float *x;
  long n;
  double *partial;
} SumJob;

static void sum_item(void *ctx, long item) {
  SumJob *j = ctx;
  long i0 = item * SUM_CHUNK, i1 = i0 + SUM_CHUNK < j->n ? i0 + SUM_CHUNK : j->n, i = i0;
  SumV a = {0}, b = {0}, c = {0}, d = {0};
  for (; i + 32 <= i1; i += 32) {
    SumV t[4];
    memcpy(t, j->x + i, sizeof t);
    a += t[0];
    b += t[1];
    c += t[2];
    d += t[3];
  }
  double s = 0;
  for (int l = 0; l < 8; l++) s += (double)a[l] + b[l] + c[l] + d[l];
  for (; i < i1; i++) s += j->x[i];
  j->partial[item] = s;
}

/* ---------------------------------------------------------------- N-API */

static napi_value fail(napi_env env, const char *msg) {
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

/* A Float32Array (or Int32Array when want_int) argument's data and length; NULL for null/undefined. */
static int typed(napi_env env, napi_value v, int want_int, void **data, size_t *len) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t == napi_null || t == napi_undefined) {
    *data = NULL;
    *len = 0;
    return 1;
  }
  bool is;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  napi_typedarray_type type;
  napi_value buf;
  size_t off;
  if (napi_get_typedarray_info(env, v, &type, len, data, &buf, &off) != napi_ok) return 0;
  return want_int ? type == napi_int32_array : type == napi_float32_array;
}

static int num(napi_env env, napi_value v, double *out) { return napi_get_value_double(env, v, out) == napi_ok; }

#define ARGS(n)                                                                                                \
  size_t argc = n;                                                                                             \
  napi_value argv[n];                                                                                          \
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);                                                        \
  if (argc < n) return fail(env, "kiln_gemm: too few arguments");

static napi_value js_linear(napi_env env, napi_callback_info info) {
  ARGS(7)
  float *x, *w, *bias, *out;
  size_t nx, nw, nb, no;
  double rows, inF, outF;
  if (!typed(env, argv[0], 0, (void **)&x, &nx) || !typed(env, argv[1], 0, (void **)&w, &nw) ||
      !typed(env, argv[2], 0, (void **)&bias, &nb) || !typed(env, argv[3], 0, (void **)&out, &no) ||
      !num(env, argv[4], &rows) || !num(env, argv[5], &inF) || !num(env, argv[6], &outF))
    return fail(env, "linear(x, w, bias, out, rows, inF, outF): bad argument");
  if (nx < rows * inF || nw < outF * inF || no < rows * outF || (bias && nb < outF) || !x || !w || !out)
    return fail(env, "linear: array too short for the shape");
  gemm_nt((long)rows, (long)outF, (long)inF, x, (long)inF, w, (long)inF, out, (long)outF, bias);
  return NULL;
}

static napi_value js_matmul(napi_env env, napi_callback_info info) {
  ARGS(9)
  float *a, *b, *out;
  int32_t *offA, *offB;
  size_t na, nb, no, noa, nob;
  double batch, m, k, n;
  if (!typed(env, argv[0], 0, (void **)&a, &na) || !typed(env, argv[1], 0, (void **)&b, &nb) ||
      !typed(env, argv[2], 0, (void **)&out, &no) || !num(env, argv[3], &batch) || !num(env, argv[4], &m) ||
      !num(env, argv[5], &k) || !num(env, argv[6], &n) || !typed(env, argv[7], 1, (void **)&offA, &noa) ||
      !typed(env, argv[8], 1, (void **)&offB, &nob) || !a || !b || !out || !offA || !offB)
    return fail(env, "matmul(a, b, out, batch, m, k, n, offA, offB): bad argument");
  long T = (long)batch;
  if (noa < (size_t)T || nob < (size_t)T || no < batch * m * n) return fail(env, "matmul: array too short for the shape");
  for (long t = 0; t < T; t++)
    if (offA[t] < 0 || offB[t] < 0 || (offA[t] + 1) * m * k > na || (offB[t] + 1) * k * n > nb)
      return fail(env, "matmul: batch offset out of range");
  MmJob job = {pick_cols(), (long)m, (long)k, (long)n, a, b, offA, offB, out, NULL};
  job.bt = malloc(sizeof(float) * (size_t)(T * k * n > 0 ? T * k * n : 1));
  if (!job.bt) return fail(env, "matmul: out of memory");
  parallel_for(T, 2.0 * T * k * n, 8.0 * T * k * n, mm_transpose, &job);
  parallel_for(T, 2.0 * T * m * n * k, 4.0 * T * (m + n) * k, mm_item, &job);
  free(job.bt);
  return NULL;
}

static napi_value js_attention(napi_env env, napi_callback_info info) {
  ARGS(13)
  float *q, *k, *v, *out;
  size_t nq, nk, nv, no;
  double b, s, h, kvh, sk, d, dv, scale;
  bool causal;
  if (!typed(env, argv[0], 0, (void **)&q, &nq) || !typed(env, argv[1], 0, (void **)&k, &nk) ||
      !typed(env, argv[2], 0, (void **)&v, &nv) || !typed(env, argv[3], 0, (void **)&out, &no) ||
      !num(env, argv[4], &b) || !num(env, argv[5], &s) || !num(env, argv[6], &h) || !num(env, argv[7], &kvh) ||
      !num(env, argv[8], &sk) || !num(env, argv[9], &d) || !num(env, argv[10], &dv) || !num(env, argv[11], &scale) ||
      napi_get_value_bool(env, argv[12], &causal) != napi_ok || !q || !k || !v || !out)
    return fail(env, "attention(q, k, v, out, b, s, h, kvh, sk, d, dv, scale, causal): bad argument");
  if (kvh < 1 || h < kvh || (long)h % (long)kvh != 0) return fail(env, "attention: heads must be a multiple of kv heads");
  if (nq < b * s * h * d || nk < b * sk * kvh * d || nv < b * sk * kvh * dv || no < b * s * h * dv)
    return fail(env, "attention: array too short for the shape");
  AttJob job = {pick_cols(), (long)b, (long)s, (long)h, (long)kvh, (long)sk, (long)d, (long)dv, (float)scale, causal, q, k, v, out};
  parallel_for((long)(b * h), 2.0 * b * h * s * sk * (d + dv), 4.0 * b * kvh * sk * (d + dv), att_item, &job);
  return NULL;
}

static napi_value js_sum(napi_env env, napi_callback_info info) {
  ARGS(1)
  float *x;
  size_t n;
  if (!typed(env, argv[0], 0, (void **)&x, &n) || !x) return fail(env, "sum(x): x must be a Float32Array");
  long items = ((long)n + SUM_CHUNK - 1) / SUM_CHUNK;
  SumJob job = {x, (long)n, calloc((size_t)(items > 0 ? items : 1), sizeof(double))};
  if (!job.partial) return fail(env, "sum: out of memory");
  parallel_for(items, (double)n, 4.0 * (double)n, sum_item, &job);
  double total = 0;
  for (long i = 0; i < items; i++) total += job.partial[i];
  free(job.partial);
  napi_value r;
  napi_create_double(env, total, &r);
  return r;
}

static napi_value js_threads(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value r;
  napi_create_int32(env, thread_count(), &r);
  return r;
}

static napi_value js_isa(napi_env env, napi_callback_info info) {
  (void)info;
  ColsFn f = pick_cols();
#if defined(__x86_64__) && !defined(KILN_GEMM_PORTABLE)
  const char *name = f == g512_cols ? "avx512" : f == g256_cols ? "avx2" : "sse";
#else
  (void)f;
  const char *name = "neon"; /* 4-wide vector types: NEON on arm64, the compiler's lowering elsewhere */
#endif
  napi_value r;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &r);
  return r;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"linear", NULL, js_linear, NULL, NULL, NULL, napi_default, NULL},
      {"matmul", NULL, js_matmul, NULL, NULL, NULL, napi_default, NULL},
      {"attention", NULL, js_attention, NULL, NULL, NULL, napi_default, NULL},
      {"threads", NULL, js_threads, NULL, NULL, NULL, napi_default, NULL},
      {"sum", NULL, js_sum, NULL, NULL, NULL, napi_default, NULL},
      {"isa", NULL, js_isa, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
