/* mpi_model.c - models split across MPI ranks (include/retcl_mpi.h,
 * docs/hpc.md): the hooks of retcl_model_split (retcl.h) over the handle's
 * communicator, and retcl_mpi_model_load.
 *
 *  - agree: an MPI_Allgather of (status, tokens) per rank: the agreed
 *    status, and for a sequence split this rank's first position and the
 *    whole length.
 *  - sum (heads split): the layer's partial output read to the host, an
 *    MPI_Allreduce (sum) with one more float flagging a rank that failed,
 *    written back. A flagged sum runs one agreement to name the rank.
 *  - retention (sequence split): an agreement, retcl_mpi_retention over
 *    the slices, then the last rank's state (the whole sequence's) is
 *    broadcast so every rank's decode state holds it.
 * Device data crosses ranks through host memory (h->stage). */
#include "mpi/mpi_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A result carrying the handle's message. */
static retcl_split_result result(const retcl_mpi *h, retcl_status st) {
  retcl_split_result r;
  r.status = st;
  r.message[0] = 0;
  if (st) snprintf(r.message, sizeof r.message, "%.500s", h->msg);
  return r;
}

/* Agree on st (records of one word). */
static retcl_status agree_status(retcl_mpi *h, retcl_status st) {
  uint64_t rec = (uint64_t)st;
  uint64_t *all = malloc((size_t)h->size * sizeof *all);
  if (!all) return RETCL_ERROR_OUT_OF_MEMORY; /* peers wait: cannot help */
  st = retcl_mpi__agree_records(h->comm, h->rank, h->size, h->msg, &rec, 1,
                                all, &h->model_stats.control_bytes);
  free(all);
  return st;
}

/* The host staging buffer, at least n floats. */
static float *stage(retcl_mpi *h, size_t n) {
  if (h->stage_n >= n) return h->stage;
  float *p = realloc(h->stage, n * sizeof *p);
  if (!p) return NULL;
  h->stage = p;
  h->stage_n = n;
  return p;
}

/* This rank's own failure keeps its own message (the model's context has
 * it); the hook reports the agreed status. */
static void own_message(retcl_mpi *h, retcl_context *ctx, retcl_status st) {
  if (st) snprintf(h->msg, MSG_LEN, "%s", retcl_last_error(ctx));
}

static retcl_split_result hook_agree(void *user, retcl_context *ctx,
                                     retcl_status status, size_t tokens,
                                     uint64_t shape, size_t *token_offset,
                                     size_t *token_total) {
  retcl_mpi *h = user;
  own_message(h, ctx, status);
  uint64_t rec[3] = {(uint64_t)status, (uint64_t)tokens, shape};
  uint64_t *all = malloc((size_t)h->size * 3 * sizeof *all);
  if (!all) {
    snprintf(h->msg, MSG_LEN, "out of host memory");
    return result(h, RETCL_ERROR_OUT_OF_MEMORY);
  }
  retcl_status st = retcl_mpi__agree_records(
      h->comm, h->rank, h->size, h->msg, rec, 3, all,
      &h->model_stats.control_bytes);
  size_t offset = 0, total = 0;
  for (int r = 0; r < h->size; ++r) {
    if (r < h->rank) offset += all[3 * r + 1];
    total += all[3 * r + 1];
  }
  /* Every rank sees the same records, so every rank fails alike. */
  for (int r = 1; r < h->size && !st; ++r)
    if (all[3 * r + 2] != all[2]) {
      st = RETCL_ERROR_INVALID_ARGUMENT;
      snprintf(h->msg, MSG_LEN,
               "the ranks' calls differ (rank %d's batch, tokens, packing, "
               "slots, algorithm or chunk are not rank 0's): every rank of "
               "a split model makes the same call%s",
               r, " (a sequence split's ranks differ in their tokens only)");
    }
  free(all);
  *token_offset = offset;
  *token_total = total;
  return result(h, st);
}

static retcl_split_result hook_sum(void *user, retcl_context *ctx,
                                   retcl_buffer y, size_t n,
                                   retcl_status status) {
  retcl_mpi *h = user;
  cl_command_queue q = retcl_context_queue(ctx);
  float *buf = stage(h, n + 1);
  if (!buf && !status) {
    status = RETCL_ERROR_OUT_OF_MEMORY;
    snprintf(h->msg, MSG_LEN, "out of host memory (%zu floats)", n + 1);
  } else {
    own_message(h, ctx, status);
  }
  double t = MPI_Wtime();
  cl_int err = CL_SUCCESS;
  if (!status) {
    err = clEnqueueReadBuffer(q, y.mem, CL_TRUE, y.offset * sizeof(float),
                              n * sizeof(float), buf, 0, NULL, NULL);
    if (err != CL_SUCCESS) {
      status = RETCL_ERROR_OPENCL;
      snprintf(h->msg, MSG_LEN, "reading a partial sum: %s",
               retcl_cl_error_name(err));
    }
  }
  if (!buf) {
    /* No memory to take part with the data: the flag alone, then the
     * agreement (the peers see the flag and join it). */
    float flag = 1.0f;
    MPI_Allreduce(MPI_IN_PLACE, &flag, 1, MPI_FLOAT, MPI_SUM, h->comm);
    return result(h, agree_status(h, status));
  }
  if (status) memset(buf, 0, n * sizeof *buf);
  buf[n] = status ? 1.0f : 0.0f;
  h->model_stats.seconds_device += MPI_Wtime() - t;
  t = MPI_Wtime();
  MPI_Allreduce(MPI_IN_PLACE, buf, (int)(n + 1), MPI_FLOAT, MPI_SUM, h->comm);
  h->model_stats.seconds_exchange += MPI_Wtime() - t;
  h->model_stats.bytes_sent += (n + 1) * sizeof(float);
  h->model_stats.bytes_received += (n + 1) * sizeof(float);
  if ((h->sum_parity ^= 1)) h->model_stats.layer_calls++;
  if (buf[n] != 0.0f) return result(h, agree_status(h, status));
  t = MPI_Wtime();
  err = clEnqueueWriteBuffer(q, y.mem, CL_TRUE, y.offset * sizeof(float),
                             n * sizeof(float), buf, 0, NULL, NULL);
  h->model_stats.seconds_device += MPI_Wtime() - t;
  /* A failed write is this rank's alone, the others carry on: it surfaces
   * at the next agreement (the next sum, or the next call's). */
  if (err != CL_SUCCESS) {
    snprintf(h->msg, MSG_LEN, "writing a sum back: %s",
             retcl_cl_error_name(err));
    return result(h, RETCL_ERROR_OPENCL);
  }
  return result(h, RETCL_SUCCESS);
}

/* The whole sequence's state (the last rank's state_out) on every rank. */
static retcl_status share_last_state(retcl_mpi *h, retcl_context *ctx,
                                     retcl_buffer state, size_t n) {
  cl_command_queue q = retcl_context_queue(ctx);
  const int last = h->size - 1;
  float *buf = stage(h, n);
  retcl_status st = buf ? RETCL_SUCCESS : RETCL_ERROR_OUT_OF_MEMORY;
  if (!buf) snprintf(h->msg, MSG_LEN, "out of host memory (%zu floats)", n);
  double t = MPI_Wtime();
  if (!st && h->rank == last &&
      clEnqueueReadBuffer(q, state.mem, CL_TRUE, state.offset * sizeof(float),
                          n * sizeof(float), buf, 0, NULL, NULL) != CL_SUCCESS) {
    st = RETCL_ERROR_OPENCL;
    snprintf(h->msg, MSG_LEN, "reading the last rank's state");
  }
  h->model_stats.seconds_device += MPI_Wtime() - t;
  if ((st = agree_status(h, st))) return st;
  t = MPI_Wtime();
  MPI_Bcast(buf, (int)n, MPI_FLOAT, last, h->comm);
  h->model_stats.seconds_exchange += MPI_Wtime() - t;
  if (h->rank == last)
    h->model_stats.bytes_sent += n * sizeof(float);
  else
    h->model_stats.bytes_received += n * sizeof(float);
  t = MPI_Wtime();
  if (h->rank != last &&
      clEnqueueWriteBuffer(q, state.mem, CL_TRUE, state.offset * sizeof(float),
                           n * sizeof(float), buf, 0, NULL, NULL) != CL_SUCCESS) {
    snprintf(h->msg, MSG_LEN, "writing the shared state");
    st = RETCL_ERROR_OPENCL;
  }
  h->model_stats.seconds_device += MPI_Wtime() - t;
  return st;
}

static retcl_split_result hook_retention(void *user, retcl_context *ctx,
                                         const retcl_retention_desc *desc,
                                         retcl_buffer q, retcl_buffer k,
                                         retcl_buffer v,
                                         retcl_buffer log_decay,
                                         retcl_buffer state_out,
                                         retcl_buffer out,
                                         retcl_status status) {
  retcl_mpi *h = user;
  own_message(h, ctx, status);
  retcl_status st = agree_status(h, status);
  if (st) return result(h, st);
  retcl_mpi_stats s;
  st = retcl_mpi_retention(h, desc, RETCL_MPI_SCAN_EXSCAN, q, k, v, log_decay,
                           retcl_no_buf(), state_out, out, &s);
  h->model_stats.bytes_sent += s.bytes_sent;
  h->model_stats.bytes_received += s.bytes_received;
  h->model_stats.control_bytes += s.control_bytes;
  h->model_stats.seconds_exchange += s.seconds_exchange;
  h->model_stats.layer_calls++;
  if (st) return result(h, st); /* agreed inside */
  if (state_out.mem) {
    const size_t n = desc->batch * desc->heads * desc->key_dim *
                     desc->value_dim;
    st = share_last_state(h, ctx, state_out, n);
  }
  return result(h, st);
}

retcl_status retcl_mpi_model_load(retcl_mpi *h, const char *dir,
                                  retcl_mpi_split split, retcl_storage storage,
                                  retcl_model **out) {
  if (!h) return RETCL_ERROR_INVALID_ARGUMENT;
  h->msg[0] = 0;
  if (out) *out = NULL;
  retcl_model_split s;
  memset(&s, 0, sizeof s);
  s.user = h;
  s.agree = hook_agree;
  retcl_status st = RETCL_SUCCESS;
  if (!out) {
    st = RETCL_ERROR_INVALID_ARGUMENT;
    snprintf(h->msg, MSG_LEN, "retcl_mpi_model_load: out is NULL");
  } else if (split == RETCL_MPI_SPLIT_SEQUENCE) {
    s.sequence = 1;
    s.retention = hook_retention;
  } else if (split == RETCL_MPI_SPLIT_HEADS) {
    s.part = (size_t)h->rank;
    s.parts = (size_t)h->size;
    s.sum = hook_sum;
  } else {
    st = RETCL_ERROR_INVALID_ARGUMENT;
    snprintf(h->msg, MSG_LEN,
             "retcl_mpi_model_load: split = %d is not a retcl_mpi_split",
             (int)split);
  }
  retcl_model *m = NULL;
  if (!st && (st = retcl_model_load_split(h->ctx, dir, storage, &s, &m)))
    snprintf(h->msg, MSG_LEN, "rank %d: %s", h->rank,
             retcl_last_error(h->ctx));
  if ((st = agree_status(h, st))) {
    retcl_model_destroy(m);
    return st;
  }
  *out = m;
  return RETCL_SUCCESS;
}

void retcl_mpi_model_stats_get(retcl_mpi *h, retcl_mpi_model_stats *out,
                               int reset) {
  if (!h) return;
  if (out) *out = h->model_stats;
  if (reset) memset(&h->model_stats, 0, sizeof h->model_stats);
}
