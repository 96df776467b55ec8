/* retcl_mpi.c - libretcl_mpi: per-rank handles on a duplicated
 * communicator and sequence-parallel retention (include/retcl_mpi.h,
 * docs/design.md §1.8, docs/hpc.md). Uses only RetCL's public API.
 *
 * A call goes through three agreed steps, so that no rank ever waits for a
 * peer that has already returned:
 *   A  local checks of the arguments       -> agreement 1 (shapes, tokens)
 *   B  the slice's own pass, its pair       -> agreement 2
 *      exchange of the pairs (Exscan / ring)
 *   D  the finish with the incoming state   -> agreement 3
 * Ranks after 0 compute their slice's outputs from zero in B and only add
 * the incoming state's term in D (retcl_retention_add_state), except in
 * the torchscale chunkwise form, whose normalisers depend on the state: B
 * is then a state-only pass on every rank (rank 0's from state_in) and D
 * runs the slice with its incoming state.
 * Every agreement is an MPI_Allgather of the ranks' statuses (with the
 * shape record in the first); a failing rank's message is broadcast. */
#include "mpi/mpi_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAG_RING 7301

static _Thread_local char create_msg[MSG_LEN];

static const char *OP = "retcl_mpi_retention";

static retcl_status fail(char *msg, retcl_status st, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, MSG_LEN, fmt, ap);
  va_end(ap);
  return st;
}

/* A RetCL call's failure: its own message. */
static retcl_status from_ctx(retcl_mpi *h, retcl_status st, const char *what) {
  if (st) {
    /* Truncation of a long build log is fine. */
    const int n = snprintf(h->msg, MSG_LEN, "%s: %s: ", OP, what);
    if (n > 0 && n < MSG_LEN)
      snprintf(h->msg + n, MSG_LEN - (size_t)n, "%s", retcl_last_error(h->ctx));
  }
  return st;
}

/* ---- agreement ----------------------------------------------------------- */

/* Every rank's status (all[r * stride] of nrec-word records gathered from
 * rec): the first failing rank's status and message on every rank. */
retcl_status retcl_mpi__agree_records(MPI_Comm comm, int rank, int size,
                                      char *msg, const uint64_t *rec,
                                      int nrec, uint64_t *all, size_t *ctl) {
  MPI_Allgather(rec, nrec, MPI_UINT64_T, all, nrec, MPI_UINT64_T, comm);
  if (ctl) *ctl += (size_t)nrec * 8 * (size_t)(size + 1);
  int failed = -1;
  for (int r = 0; r < size && failed < 0; ++r)
    if (all[(size_t)r * nrec] != 0) failed = r;
  if (failed < 0) return RETCL_SUCCESS;
  char buf[MSG_LEN];
  if (rank == failed) memcpy(buf, msg, MSG_LEN);
  buf[MSG_LEN - 1] = 0;
  MPI_Bcast(buf, MSG_LEN, MPI_CHAR, failed, comm);
  if (ctl) *ctl += MSG_LEN;
  if (rank != failed) {
    const retcl_status st = (retcl_status)all[(size_t)failed * nrec];
    snprintf(msg, MSG_LEN, "rank %d failed (%s): %.900s", failed,
             retcl_status_string(st), buf);
  }
  return (retcl_status)all[(size_t)failed * nrec];
}

static retcl_status agree(retcl_mpi *h, retcl_status local, size_t *ctl) {
  uint64_t rec = (uint64_t)local;
  uint64_t *all = malloc((size_t)h->size * sizeof *all);
  if (!all) {
    /* Cannot take part: still answer the collective with a failure. */
    uint64_t one[1];
    snprintf(h->msg, MSG_LEN, "%s: out of host memory", OP);
    rec = RETCL_ERROR_OUT_OF_MEMORY;
    MPI_Allgather(&rec, 1, MPI_UINT64_T, one, 0, MPI_UINT64_T, h->comm);
    return RETCL_ERROR_OUT_OF_MEMORY;
  }
  retcl_status st =
      retcl_mpi__agree_records(h->comm, h->rank, h->size, h->msg, &rec, 1, all, ctl);
  free(all);
  return st;
}

/* ---- handles -------------------------------------------------------------- */

/* The device string for this rank: the node's GPUs (else all devices) in
 * turn by node-local rank. */
static retcl_status pick_device(MPI_Comm comm, const char *platform,
                                char *dev, size_t cap, char *msg) {
  MPI_Comm local;
  int lr = 0;
  MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local);
  MPI_Comm_rank(local, &lr);
  MPI_Comm_free(&local);
  size_t n = 0;
  retcl_status st = retcl_device_list(platform, NULL, 0, &n);
  if (st || n == 0)
    return fail(msg, st ? st : RETCL_ERROR_DEVICE_NOT_FOUND,
                "retcl_mpi_create: no OpenCL device: %s",
                retcl_last_error(NULL));
  retcl_device_entry *e = calloc(n, sizeof *e);
  if (!e) return fail(msg, RETCL_ERROR_OUT_OF_MEMORY, "retcl_mpi_create: out of memory");
  if ((st = retcl_device_list(platform, e, n, &n))) {
    free(e);
    return fail(msg, st, "retcl_mpi_create: %s", retcl_last_error(NULL));
  }
  size_t gpus = 0;
  for (size_t i = 0; i < n; ++i) gpus += (e[i].type & CL_DEVICE_TYPE_GPU) != 0;
  const size_t want = (size_t)lr % (gpus ? gpus : n);
  size_t seen = 0, index = e[0].index;
  for (size_t i = 0; i < n; ++i) {
    if (gpus && !(e[i].type & CL_DEVICE_TYPE_GPU)) continue;
    if (seen++ == want) {
      index = e[i].index;
      break;
    }
  }
  free(e);
  snprintf(dev, cap, "%zu", index);
  return RETCL_SUCCESS;
}

static retcl_status make(MPI_Comm comm, const char *platform,
                         const char *device, retcl_context *wrap,
                         int wrapping, retcl_mpi **out) {
  create_msg[0] = 0;
  if (out) *out = NULL;
  int inited = 0;
  MPI_Initialized(&inited);
  if (!inited)
    return fail(create_msg, RETCL_ERROR_INVALID_ARGUMENT,
                "retcl_mpi_create: MPI is not initialised (call MPI_Init "
                "first)");
  if (comm == MPI_COMM_NULL)
    return fail(create_msg, RETCL_ERROR_INVALID_ARGUMENT,
                "retcl_mpi_create: comm is MPI_COMM_NULL");
  retcl_mpi tmp;
  memset(&tmp, 0, sizeof tmp);
  MPI_Comm_dup(comm, &tmp.comm);
  MPI_Comm_rank(tmp.comm, &tmp.rank);
  MPI_Comm_size(tmp.comm, &tmp.size);
  retcl_status st = RETCL_SUCCESS;
  retcl_mpi *h = NULL;
  if (!out) {
    st = fail(tmp.msg, RETCL_ERROR_INVALID_ARGUMENT, "retcl_mpi_create: out is NULL");
  } else if (wrapping && !wrap) {
    st = fail(tmp.msg, RETCL_ERROR_INVALID_ARGUMENT, "retcl_mpi_wrap: ctx is NULL");
  } else if (!(h = calloc(1, sizeof *h))) {
    st = fail(tmp.msg, RETCL_ERROR_OUT_OF_MEMORY, "retcl_mpi_create: out of memory");
  } else if (wrapping) {
    h->ctx = wrap;
  } else {
    char dev[32];
    const char *use = device;
    if (!use && !getenv("RETCL_DEVICE")) {
      if (!(st = pick_device(tmp.comm, platform, dev, sizeof dev, tmp.msg)))
        use = dev;
    }
    if (!st && (st = retcl_context_create(platform, use, &h->ctx)))
      fail(tmp.msg, st, "retcl_mpi_create: rank %d: %s", tmp.rank,
           retcl_last_error(NULL));
    h->owns_ctx = 1;
  }
  uint64_t rec = (uint64_t)st, *all = calloc((size_t)tmp.size, sizeof *all);
  if (all) {
    st = retcl_mpi__agree_records(tmp.comm, tmp.rank, tmp.size, tmp.msg, &rec, 1, all, NULL);
    free(all);
  } else {
    st = RETCL_ERROR_OUT_OF_MEMORY; /* cannot agree: the peers will hang */
  }
  if (st) {
    memcpy(create_msg, tmp.msg, MSG_LEN);
    if (h && h->owns_ctx) retcl_context_destroy(h->ctx);
    free(h);
    MPI_Comm_free(&tmp.comm);
    return st;
  }
  h->comm = tmp.comm;
  h->rank = tmp.rank;
  h->size = tmp.size;
  *out = h;
  return RETCL_SUCCESS;
}

retcl_status retcl_mpi_create(MPI_Comm comm, const char *platform,
                              const char *device, retcl_mpi **out) {
  return make(comm, platform, device, NULL, 0, out);
}

retcl_status retcl_mpi_wrap(MPI_Comm comm, retcl_context *ctx,
                            retcl_mpi **out) {
  return make(comm, NULL, NULL, ctx, 1, out);
}

void retcl_mpi_destroy(retcl_mpi *h) {
  if (!h) return;
  if (h->tmp_state) clReleaseMemObject(h->tmp_state);
  free(h->stage);
  if (h->owns_ctx) retcl_context_destroy(h->ctx);
  MPI_Comm_free(&h->comm);
  free(h);
}

retcl_context *retcl_mpi_context(const retcl_mpi *h) { return h ? h->ctx : NULL; }
int retcl_mpi_rank(const retcl_mpi *h) { return h ? h->rank : -1; }
int retcl_mpi_size(const retcl_mpi *h) { return h ? h->size : 0; }
MPI_Comm retcl_mpi_comm(const retcl_mpi *h) { return h ? h->comm : MPI_COMM_NULL; }
const char *retcl_mpi_last_error(const retcl_mpi *h) {
  return h ? h->msg : create_msg;
}

/* ---- buffers ------------------------------------------------------------- */

static retcl_status grow(retcl_mpi *h, cl_mem *m, size_t *have, size_t n) {
  if (*have >= n) return RETCL_SUCCESS;
  if (*m) clReleaseMemObject(*m);
  *m = NULL;
  *have = 0;
  cl_int err;
  *m = clCreateBuffer(retcl_context_cl_context(h->ctx), CL_MEM_READ_WRITE,
                      n * sizeof(float), NULL, &err);
  if (err != CL_SUCCESS)
    return fail(h->msg, RETCL_ERROR_OUT_OF_MEMORY,
                "%s: staging buffer of %zu floats: %s", OP, n,
                retcl_cl_error_name(err));
  *have = n;
  return RETCL_SUCCESS;
}

/* A caller's buffer: present (unless optional), of this rank's context,
 * holding offset + n floats. */
static retcl_status check_buf(retcl_mpi *h, const char *name, retcl_buffer b,
                              size_t n, int optional) {
  if (!b.mem) {
    if (optional) return RETCL_SUCCESS;
    return fail(h->msg, RETCL_ERROR_INVALID_ARGUMENT, "%s: %s is NULL", OP,
                name);
  }
  cl_context c = NULL;
  size_t bytes = 0;
  if (clGetMemObjectInfo(b.mem, CL_MEM_CONTEXT, sizeof c, &c, NULL) !=
          CL_SUCCESS ||
      clGetMemObjectInfo(b.mem, CL_MEM_SIZE, sizeof bytes, &bytes, NULL) !=
          CL_SUCCESS)
    return fail(h->msg, RETCL_ERROR_INVALID_ARGUMENT,
                "%s: %s is not a valid cl_mem", OP, name);
  if (c != retcl_context_cl_context(h->ctx))
    return fail(h->msg, RETCL_ERROR_CONTEXT_MISMATCH,
                "%s: %s belongs to another cl_context than rank %d's", OP,
                name, h->rank);
  if (bytes / sizeof(float) < b.offset ||
      bytes / sizeof(float) - b.offset < n)
    return fail(h->msg, RETCL_ERROR_BUFFER_TOO_SMALL,
                "%s: %s holds %zu floats; offset %zu + %zu needed", OP, name,
                bytes / sizeof(float), b.offset, n);
  return RETCL_SUCCESS;
}

/* The chunk size a chunkwise call of this context uses. */
static size_t resolved_chunk(const retcl_mpi *h, const retcl_retention_desc *d) {
  if (d->algorithm != RETCL_ALGO_CHUNKWISE) return 0;
  if (d->chunk_size) return d->chunk_size;
  for (size_t i = 0; i < retcl_param_count(); ++i) {
    retcl_param_info p;
    if (retcl_param_get(h->ctx, i, &p) == RETCL_SUCCESS &&
        !strcmp(p.family, "retention") && !strcmp(p.key, "chunk"))
      return (size_t)p.value;
  }
  return 64;
}

/* ---- the pair -------------------------------------------------------------
 * floats: [0] H, [1] B*H, [2] Dk*Dv, [3] token count n, then H total log
 * decays L·log γ_h, then B*H states of Dk*Dv (raw, docs/design.md §1.3). */
#define PAIR_HEADER 4

static size_t pair_floats(size_t H, size_t BH, size_t DkDv) {
  return PAIR_HEADER + H + BH * DkDv;
}

/* right := left ∘ right: (l1 + l2, exp(l2) S1 + S2, n1 + n2). */
static void combine_pair(const float *left, float *right) {
  const size_t H = (size_t)right[0], BH = (size_t)right[1],
               DkDv = (size_t)right[2];
  const float *l1 = left + PAIR_HEADER, *S1 = l1 + H;
  float *l2 = right + PAIR_HEADER, *S2 = l2 + H;
  for (size_t bh = 0; bh < BH; ++bh) {
    const double a2 = exp((double)l2[bh % H]);
    for (size_t i = 0; i < DkDv; ++i)
      S2[bh * DkDv + i] =
          (float)(a2 * (double)S1[bh * DkDv + i] + (double)S2[bh * DkDv + i]);
  }
  for (size_t h = 0; h < H; ++h) l2[h] = l1[h] + l2[h];
  right[3] = left[3] + right[3];
}

/* MPI_User_function: inout[i] = in[i] ∘ inout[i], in from the lower ranks
 * (MPI keeps that order for a non-commutative operation). One element of
 * the datatype is one pair. */
static void pair_op(void *in, void *inout, int *len, MPI_Datatype *type) {
  int bytes = 0;
  MPI_Type_size(*type, &bytes);
  const size_t n = (size_t)bytes / sizeof(float);
  for (int i = 0; i < *len; ++i)
    combine_pair((const float *)in + (size_t)i * n,
                 (float *)inout + (size_t)i * n);
}

/* c_n = Σ_{j<n} γ^j in double. */
static double decay_sum(double lg, double n) {
  if (n <= 0) return 0;
  if (lg == 0) return n;
  return expm1(n * lg) / expm1(lg);
}

/* Multiply the B*H states by sqrt(c_n) (power +1: torchscale -> raw) or
 * 1/sqrt(c_n) (power -1). */
static void torchscale_scale(float *S, const float *lg, size_t H, size_t BH,
                             size_t DkDv, double n, int power) {
  for (size_t bh = 0; bh < BH; ++bh) {
    const double c = sqrt(decay_sum((double)lg[bh % H], n));
    const double f = power > 0 ? c : 1.0 / c;
    for (size_t i = 0; i < DkDv; ++i)
      S[bh * DkDv + i] = (float)(f * (double)S[bh * DkDv + i]);
  }
}

static retcl_status read_floats(retcl_mpi *h, retcl_buffer b, float *host,
                                size_t n) {
  cl_int err = clEnqueueReadBuffer(retcl_context_queue(h->ctx), b.mem, CL_TRUE,
                                   b.offset * sizeof(float), n * sizeof(float),
                                   host, 0, NULL, NULL);
  if (err != CL_SUCCESS)
    return fail(h->msg, RETCL_ERROR_OPENCL, "%s: clEnqueueReadBuffer: %s", OP,
                retcl_cl_error_name(err));
  return RETCL_SUCCESS;
}

/* ---- sequence-parallel retention ----------------------------------------- */

enum { R_STATUS, R_TOKENS, R_BATCH, R_HEADS, R_DK, R_DV, R_LAYOUT, R_ALGO,
       R_FORM, R_CHUNK, R_POSITION, R_SCALE, R_N };
static const char *const field_names[R_N] = {
    "status", "tokens", "desc->batch", "desc->heads", "desc->key_dim",
    "desc->value_dim", "desc->layout", "desc->algorithm", "desc->form",
    "the chunk size", "desc->position", "desc->scale"};

/* Step A: this rank's arguments, before anything runs. */
static retcl_status check_local(retcl_mpi *h, const retcl_retention_desc *d,
                                retcl_mpi_scan scan, retcl_buffer q,
                                retcl_buffer k, retcl_buffer v,
                                retcl_buffer lg, retcl_buffer s_in,
                                retcl_buffer s_out, retcl_buffer out) {
  if (!d)
    return fail(h->msg, RETCL_ERROR_INVALID_ARGUMENT, "%s: desc is NULL", OP);
  if (scan != RETCL_MPI_SCAN_EXSCAN && scan != RETCL_MPI_SCAN_RING)
    return fail(h->msg, RETCL_ERROR_INVALID_ARGUMENT,
                "%s: scan = %d is not a retcl_mpi_scan", OP, (int)scan);
  if (d->packing.count)
    return fail(h->msg, RETCL_ERROR_UNSUPPORTED,
                "%s: packed sequences (desc->packing) are not split across "
                "ranks; pass one rectangular batch",
                OP);
  if (d->form != RETCL_FORM_RAW && d->form != RETCL_FORM_TORCHSCALE)
    return fail(h->msg, RETCL_ERROR_INVALID_ARGUMENT,
                "%s: desc->form = %d is not a retcl_retention_form", OP,
                (int)d->form);
  if (d->algorithm != RETCL_ALGO_PARALLEL &&
      d->algorithm != RETCL_ALGO_RECURRENT &&
      d->algorithm != RETCL_ALGO_CHUNKWISE)
    return fail(h->msg, RETCL_ERROR_INVALID_ARGUMENT,
                "%s: desc->algorithm = %d is not a retcl_algorithm", OP,
                (int)d->algorithm);
  if (d->layout != RETCL_LAYOUT_TOKEN_MAJOR &&
      d->layout != RETCL_LAYOUT_HEAD_MAJOR)
    return fail(h->msg, RETCL_ERROR_INVALID_ARGUMENT,
                "%s: desc->layout = %d is not a retcl_layout", OP,
                (int)d->layout);
  if (d->form == RETCL_FORM_TORCHSCALE && d->algorithm == RETCL_ALGO_PARALLEL)
    return fail(h->msg, RETCL_ERROR_UNSUPPORTED,
                "%s: the torchscale parallel form does not split exactly: "
                "its row normaliser sums |scores| over every earlier token, "
                "which no state carries; use the torchscale chunkwise (slices "
                "at multiples of the chunk size) or recurrent form",
                OP);
  const struct {
    const char *name;
    size_t value;
  } dims[] = {{"desc->batch", d->batch},
              {"desc->tokens", d->tokens},
              {"desc->heads", d->heads},
              {"desc->key_dim", d->key_dim},
              {"desc->value_dim", d->value_dim}};
  for (size_t i = 0; i < 5; ++i)
    if (dims[i].value == 0)
      return fail(h->msg, RETCL_ERROR_INVALID_SIZE,
                  "%s: %s is 0 on rank %d (every rank needs at least one)",
                  OP, dims[i].name, h->rank);
  if (h->rank > 0 && s_in.mem)
    return fail(h->msg, RETCL_ERROR_INVALID_ARGUMENT,
                "%s: state_in is given on rank %d; only rank 0 takes the "
                "sequence's initial state (the others receive theirs)",
                OP, h->rank);
  const size_t bth = d->batch * d->tokens * d->heads;
  const size_t state = d->batch * d->heads * d->key_dim * d->value_dim;
  retcl_status st;
  if ((st = check_buf(h, "q", q, bth * d->key_dim, 0)) ||
      (st = check_buf(h, "k", k, bth * d->key_dim, 0)) ||
      (st = check_buf(h, "v", v, bth * d->value_dim, 0)) ||
      (st = check_buf(h, "log_decay", lg, d->heads, 0)) ||
      (st = check_buf(h, "state_in", s_in, state, 1)) ||
      (st = check_buf(h, "state_out", s_out, state, 1)) ||
      (st = check_buf(h, "out", out, bth * d->value_dim, 0)))
    return st;
  return RETCL_SUCCESS;
}

/* Agreement 1's checks across ranks (the same on every rank): equal
 * shapes, and torchscale chunkwise slices at chunk boundaries. */
static retcl_status check_across(retcl_mpi *h, const uint64_t *all) {
  const uint64_t *r0 = all;
  for (int r = 1; r < h->size; ++r) {
    const uint64_t *rr = all + (size_t)r * R_N;
    for (int f = R_BATCH; f < R_N; ++f) {
      if (f == R_POSITION) continue;
      if (f == R_CHUNK && r0[R_ALGO] != RETCL_ALGO_CHUNKWISE) continue;
      if (rr[f] != r0[f])
        return fail(h->msg, RETCL_ERROR_INVALID_ARGUMENT,
                    "%s: %s differs between ranks: rank %d has %llu, rank 0 "
                    "has %llu (every rank passes the same desc but tokens)",
                    OP, field_names[f], r, (unsigned long long)rr[f],
                    (unsigned long long)r0[f]);
    }
  }
  if (r0[R_FORM] == RETCL_FORM_TORCHSCALE && r0[R_ALGO] == RETCL_ALGO_CHUNKWISE) {
    uint64_t start = r0[R_POSITION];
    const uint64_t C = r0[R_CHUNK];
    for (int r = 1; r < h->size; ++r) {
      start += all[(size_t)(r - 1) * R_N + R_TOKENS];
      if (start % C)
        return fail(h->msg, RETCL_ERROR_UNSUPPORTED,
                    "%s: rank %d's slice starts at token %llu, not a "
                    "multiple of the chunk size %llu: the torchscale "
                    "chunkwise form splits only at chunk boundaries (its "
                    "results depend on where chunks start)",
                    OP, r, (unsigned long long)start, (unsigned long long)C);
    }
  }
  return RETCL_SUCCESS;
}

retcl_status retcl_mpi_retention(retcl_mpi *h, const retcl_retention_desc *desc,
                                 retcl_mpi_scan scan, retcl_buffer q,
                                 retcl_buffer k, retcl_buffer v,
                                 retcl_buffer log_decay, retcl_buffer state_in,
                                 retcl_buffer state_out, retcl_buffer out,
                                 retcl_mpi_stats *stats) {
  if (!h) return RETCL_ERROR_INVALID_ARGUMENT; /* no communicator to agree on */
  retcl_mpi_stats s;
  memset(&s, 0, sizeof s);
  h->msg[0] = 0;
  if (stats) memset(stats, 0, sizeof *stats);

  /* ---- A: local checks, agreed with the shape record ---- */
  double t = MPI_Wtime();
  retcl_status st = check_local(h, desc, scan, q, k, v, log_decay, state_in,
                                state_out, out);
  uint64_t rec[R_N];
  memset(rec, 0, sizeof rec);
  rec[R_STATUS] = (uint64_t)st;
  if (!st) {
    rec[R_TOKENS] = desc->tokens;
    rec[R_BATCH] = desc->batch;
    rec[R_HEADS] = desc->heads;
    rec[R_DK] = desc->key_dim;
    rec[R_DV] = desc->value_dim;
    rec[R_LAYOUT] = (uint64_t)desc->layout;
    rec[R_ALGO] = (uint64_t)desc->algorithm;
    rec[R_FORM] = (uint64_t)desc->form;
    rec[R_CHUNK] = resolved_chunk(h, desc);
    rec[R_POSITION] = desc->position;
    float sc = desc->scale;
    uint32_t bits;
    memcpy(&bits, &sc, sizeof bits);
    rec[R_SCALE] = bits;
  }
  uint64_t *all = malloc((size_t)h->size * R_N * sizeof *all);
  if (!all) {
    /* Take part in the agreement as a failed rank, then stop. */
    rec[R_STATUS] = RETCL_ERROR_OUT_OF_MEMORY;
    snprintf(h->msg, MSG_LEN, "%s: out of host memory", OP);
    uint64_t dummy[R_N];
    MPI_Allgather(rec, R_N, MPI_UINT64_T, dummy, 0, MPI_UINT64_T, h->comm);
    return RETCL_ERROR_OUT_OF_MEMORY;
  }
  st = retcl_mpi__agree_records(h->comm, h->rank, h->size, h->msg, rec, R_N, all,
                     &s.control_bytes);
  if (!st) st = check_across(h, all);
  if (st) {
    free(all);
    return st;
  }
  const retcl_retention_desc *d = desc;
  const int ts = d->form == RETCL_FORM_TORCHSCALE;
  const size_t H = d->heads, BH = d->batch * d->heads,
               DkDv = d->key_dim * d->value_dim;
  const size_t nstate = BH * DkDv;
  /* Tokens before this rank's slice (rank 0's position included). */
  uint64_t before = all[R_POSITION];
  for (int r = 0; r < h->rank; ++r) before += all[(size_t)r * R_N + R_TOKENS];
  free(all);
  retcl_context *ctx = h->ctx;

  if (h->size == 1) {
    st = from_ctx(h, retcl_retention(ctx, d, q, k, v, log_decay, state_in,
                                     state_out, out, 0, NULL, NULL),
                  "retcl_retention");
    if (!st) st = from_ctx(h, retcl_finish(ctx), "retcl_finish");
    s.seconds_local = MPI_Wtime() - t;
    st = agree(h, st, &s.control_bytes);
    if (stats) *stats = s;
    return st;
  }

  /* ---- B: the slice's own pass and its pair ---- */
  const size_t nf = pair_floats(H, BH, DkDv);
  float *pair = malloc(nf * sizeof(float)), *in = malloc(nf * sizeof(float));
  float *lg = malloc(H * sizeof(float));
  s.pair_bytes = nf * sizeof(float);
  if (!pair || !in || !lg)
    st = fail(h->msg, RETCL_ERROR_OUT_OF_MEMORY, "%s: out of host memory", OP);
  if (!st) st = read_floats(h, log_decay, lg, H);
  if (!st) st = grow(h, &h->tmp_state, &h->tmp_state_n, nstate);
  /* The torchscale chunkwise form cannot add the state afterwards. */
  const int rerun = ts && d->algorithm == RETCL_ALGO_CHUNKWISE;
  retcl_buffer local_state = retcl_buf(h->tmp_state, 0);
  if (!st && h->rank == 0 && rerun) {
    /* Only the state first (the others wait for it), the outputs in D,
     * while the others finish theirs. */
    st = from_ctx(h, retcl_retention(ctx, d, q, k, v, log_decay, state_in,
                                     local_state, retcl_no_buf(), 0, NULL,
                                     NULL),
                  "rank 0's slice state");
  } else if (!st && h->rank == 0) {
    /* Rank 0 runs its slice once, from the sequence's state_in. */
    if (state_out.mem) local_state = state_out;
    st = from_ctx(h, retcl_retention(ctx, d, q, k, v, log_decay, state_in,
                                     local_state, out, 0, NULL, NULL),
                  "rank 0's slice");
  } else if (!st && rerun) {
    /* Only the slice's raw state from zero (no outputs): its chunks start
     * where the full pass's do. */
    retcl_retention_desc one = *d;
    one.form = RETCL_FORM_RAW;
    one.scale = 1.0f;
    one.position = 0;
    st = from_ctx(h, retcl_retention(ctx, &one, q, k, v, log_decay,
                                     retcl_no_buf(), local_state,
                                     retcl_no_buf(), 0, NULL, NULL),
                  "the slice's state");
  } else if (!st) {
    /* The slice's outputs and state from zero, into the caller's out. */
    retcl_retention_desc one = *d;
    one.position = 0;
    st = from_ctx(h, retcl_retention(ctx, &one, q, k, v, log_decay,
                                     retcl_no_buf(), local_state, out, 0,
                                     NULL, NULL),
                  "the slice from zero");
  }
  if (!st) st = read_floats(h, local_state, pair + PAIR_HEADER + H, nstate);
  if (!st) {
    pair[0] = (float)H;
    pair[1] = (float)BH;
    pair[2] = (float)DkDv;
    pair[3] = (float)(h->rank == 0 ? before + d->tokens : d->tokens);
    for (size_t i = 0; i < H; ++i)
      pair[PAIR_HEADER + i] = (float)((double)d->tokens * (double)lg[i]);
    /* A torchscale state is S_n / sqrt(c_n): the pair is raw. */
    if (ts && h->rank == 0)
      torchscale_scale(pair + PAIR_HEADER + H, lg, H, BH, DkDv,
                       (double)(before + d->tokens), +1);
    else if (ts && !rerun)
      torchscale_scale(pair + PAIR_HEADER + H, lg, H, BH, DkDv,
                       (double)d->tokens, +1);
  }
  s.seconds_local = MPI_Wtime() - t;
  st = agree(h, st, &s.control_bytes);
  if (st) goto done;

  /* ---- C: exclusive scan of the pairs ---- */
  t = MPI_Wtime();
  if (scan == RETCL_MPI_SCAN_EXSCAN) {
    MPI_Datatype type;
    MPI_Op op;
    MPI_Type_contiguous((int)nf, MPI_FLOAT, &type);
    MPI_Type_commit(&type);
    MPI_Op_create(pair_op, 0, &op);
    MPI_Exscan(pair, in, 1, type, op, h->comm);
    MPI_Op_free(&op);
    MPI_Type_free(&type);
    s.bytes_sent = s.pair_bytes;
    s.bytes_received = s.pair_bytes;
  } else {
    if (h->rank > 0) {
      MPI_Recv(in, (int)nf, MPI_FLOAT, h->rank - 1, TAG_RING, h->comm,
               MPI_STATUS_IGNORE);
      s.bytes_received = s.pair_bytes;
    }
    if (h->rank < h->size - 1) {
      if (h->rank > 0) combine_pair(in, pair); /* prefix ∘ own */
      MPI_Send(pair, (int)nf, MPI_FLOAT, h->rank + 1, TAG_RING, h->comm);
      s.bytes_sent = s.pair_bytes;
    }
  }
  s.seconds_exchange = MPI_Wtime() - t;

  /* ---- D: finish the slice with the incoming state ---- */
  t = MPI_Wtime();
  if (h->rank > 0) {
    float *S_in = in + PAIR_HEADER + H;
    float *S_local = pair + PAIR_HEADER + H;
    /* The state after the slice, S_out = γ^L S_in + S_local (raw), from
     * the pair before the ring combined it (the ring's send is exactly
     * prefix ∘ own: reuse it). */
    if (state_out.mem && !rerun) {
      if (!(scan == RETCL_MPI_SCAN_RING && h->rank < h->size - 1)) {
        combine_pair(in, pair);
      }
      if (ts)
        torchscale_scale(S_local, lg, H, BH, DkDv,
                         (double)(before + d->tokens), -1);
    }
    retcl_retention_desc fin = *d;
    fin.position = 0;
    if (ts) {
      fin.position = (size_t)before;
      torchscale_scale(S_in, lg, H, BH, DkDv, (double)before, -1);
    }
    cl_command_queue queue = retcl_context_queue(ctx);
    cl_int err = clEnqueueWriteBuffer(queue, h->tmp_state, CL_TRUE, 0,
                                      nstate * sizeof(float), S_in, 0, NULL,
                                      NULL);
    if (err == CL_SUCCESS && state_out.mem && !rerun)
      err = clEnqueueWriteBuffer(queue, state_out.mem, CL_TRUE,
                                 state_out.offset * sizeof(float),
                                 nstate * sizeof(float), S_local, 0, NULL,
                                 NULL);
    if (err != CL_SUCCESS)
      st = fail(h->msg, RETCL_ERROR_OPENCL, "%s: clEnqueueWriteBuffer: %s",
                OP, retcl_cl_error_name(err));
    if (!st && rerun)
      st = from_ctx(h, retcl_retention(ctx, &fin, q, k, v, log_decay,
                                       retcl_buf(h->tmp_state, 0), state_out,
                                       out, 0, NULL, NULL),
                    "the slice with its incoming state");
    else if (!st)
      st = from_ctx(h, retcl_retention_add_state(ctx, &fin, q, log_decay,
                                                 retcl_buf(h->tmp_state, 0),
                                                 out, 0, NULL, NULL),
                    "the incoming state's term");
  }
  if (h->rank == 0 && rerun && !st)
    st = from_ctx(h, retcl_retention(ctx, d, q, k, v, log_decay, state_in,
                                     state_out, out, 0, NULL, NULL),
                  "rank 0's slice");
  if (!st) st = from_ctx(h, retcl_finish(ctx), "retcl_finish");
  s.seconds_finish = MPI_Wtime() - t;
  st = agree(h, st, &s.control_bytes);
done:
  free(pair);
  free(in);
  free(lg);
  if (stats) *stats = s;
  return st;
}
