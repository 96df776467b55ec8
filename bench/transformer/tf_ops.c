/* tf_ops.c - launches of the baseline's operations on the context's queue:
 * projections (RetCL's retcl_linear), RetCL's RMSNorm and
 * rotation, the elementwise kernels and attention. Callers have checked
 * sizes (every index fits the kernels' 32-bit arithmetic). */
#include <math.h>

#include "tf_internal.h"

/* kernel argument i = v; the first failure is kept in err_. */
#define ARG(k, i, v)                                                  \
  do {                                                                \
    if (err_ == CL_SUCCESS) err_ = clSetKernelArg((k), (i), sizeof(v), &(v)); \
  } while (0)

static int enqueue(tf_model *m, tf_kernel_id id, cl_int err_, size_t global,
                   size_t local, tf_err *e) {
  if (err_ != CL_SUCCESS) return tf_cl_fail(e, "clSetKernelArg", err_);
  if (global == 0) return 0;
  /* CPUs: one item per work-group unless the kernel wants groups, as in
   * RetCL: left to itself PoCL may pack all items into one group and run
   * them on one core. */
  if (local == 0 && m->dev.is_cpu) local = 1;
  cl_int err = clEnqueueNDRangeKernel(m->queue, m->kernels[id], 1, NULL,
                                      &global, local ? &local : NULL, 0, NULL,
                                      NULL);
  return err == CL_SUCCESS ? 0 : tf_cl_fail(e, "clEnqueueNDRangeKernel", err);
}

/* CPU attention kernels: `count` work-items in groups of TF_CPU_GROUP,
 * the range padded up (the kernels skip the extra items). Left to itself
 * PoCL picks groups of up to 4096 items, and the per-item private arrays
 * of these kernels (kept for every item of a group across PoCL's implicit
 * loop barriers) then overflow its thread stacks. */
static int enqueue_cpu_items(tf_model *m, tf_kernel_id id, cl_int err_,
                             size_t count, tf_err *e) {
  const size_t local = TF_CPU_GROUP;
  return enqueue(m, id, err_, (count + local - 1) / local * local, local, e);
}

/* Elements per work-item of the elementwise kernels: contiguous runs on
 * CPUs, one on GPUs. */
static cl_uint per_item(const tf_model *m) { return m->dev.is_cpu ? 256u : 1u; }

static size_t div_up(size_t a, size_t b) { return (a + b - 1) / b; }

/* ---- projections -------------------------------------------------------- */

/* Y = X Wᵀ through RetCL's own projection (retcl_linear: CLBlast, or its
 * weight-streaming kernels for the few rows of a decode step), so both
 * models' projections cost the same and only attention versus retention
 * differs. */
int tf_gemm(tf_model *m, size_t M, size_t N, size_t K, cl_mem X, size_t x_off,
            cl_mem W, cl_mem Y, size_t y_off, tf_err *e) {
  retcl_status st =
      retcl_linear(m->ctx, M, N, K, 1.0f, retcl_buf(X, x_off), retcl_buf(W, 0),
                   0.0f, retcl_buf(Y, y_off), 0, NULL, NULL);
  return st ? tf_retcl_fail(e, m->ctx, "projection (retcl_linear)", st) : 0;
}

int tf_project(tf_model *m, size_t M, size_t K, cl_mem X, size_t x_off,
               size_t count, const retcl_projection *proj, tf_err *e) {
  retcl_status st = retcl_linear_many(m->ctx, M, K, retcl_buf(X, x_off), count,
                                      proj, 0, NULL, NULL);
  return st ? tf_retcl_fail(e, m->ctx, "projections (retcl_linear_many)", st)
            : 0;
}

/* ---- RetCL's ops -------------------------------------------------------- */

int tf_rms_norm(tf_model *m, size_t rows, cl_mem x, size_t x_off,
                cl_mem weight, cl_mem y, size_t y_off, tf_err *e) {
  /* RMSNorm of width d = the group norm with one group, no gate. */
  retcl_group_norm_desc d = {1, rows, 1, m->cfg.d, RETCL_LAYOUT_TOKEN_MAJOR,
                             RETCL_NORM_RMS, RETCL_GATE_NONE, m->cfg.eps};
  retcl_status st = retcl_group_norm_gate(
      m->ctx, &d, retcl_buf(x, x_off), retcl_no_buf(), retcl_buf(weight, 0),
      retcl_no_buf(), retcl_buf(y, y_off), 0, NULL, NULL);
  return st ? tf_retcl_fail(e, m->ctx, "RMSNorm (retcl_group_norm_gate)", st) : 0;
}

int tf_rotate(tf_model *m, size_t B, size_t T, size_t pos0, int is_key,
              cl_mem x, size_t off, tf_err *e) {
  retcl_rotation_desc d = {B, T, m->cfg.heads, RETCL_LAYOUT_TOKEN_MAJOR, pos0,
                           is_key};
  retcl_status st = retcl_rotate(m->ctx, m->rot, &d, retcl_buf(x, off),
                                 retcl_buf(x, off), 0, NULL, NULL);
  return st ? tf_retcl_fail(e, m->ctx, "RoPE (retcl_rotate)", st) : 0;
}

/* ---- elementwise -------------------------------------------------------- */

int tf_embed(tf_model *m, size_t rows, cl_mem out, tf_err *e) {
  cl_kernel k = m->kernels[TF_K_EMBED];
  cl_uint r = (cl_uint)rows, w = (cl_uint)m->cfg.d, per = per_item(m);
  cl_int err_ = CL_SUCCESS;
  ARG(k, 0, m->tokens);
  ARG(k, 1, m->embed);
  ARG(k, 2, out);
  ARG(k, 3, r);
  ARG(k, 4, w);
  ARG(k, 5, per);
  return enqueue(m, TF_K_EMBED, err_, div_up(rows * m->cfg.d, per), 0, e);
}

int tf_residual(tf_model *m, size_t n, cl_mem x, size_t x_off, cl_mem y,
                size_t y_off, tf_err *e) {
  cl_kernel k = m->kernels[TF_K_RESIDUAL];
  cl_uint xo = (cl_uint)x_off, yo = (cl_uint)y_off, nu = (cl_uint)n,
          per = per_item(m);
  cl_int err_ = CL_SUCCESS;
  ARG(k, 0, x);
  ARG(k, 1, xo);
  ARG(k, 2, y);
  ARG(k, 3, yo);
  ARG(k, 4, nu);
  ARG(k, 5, per);
  return enqueue(m, TF_K_RESIDUAL, err_, div_up(n, per), 0, e);
}

int tf_glu(tf_model *m, size_t n, cl_mem a, size_t a_off, cl_mem g,
           size_t g_off, tf_err *e) {
  cl_kernel k = m->kernels[TF_K_GLU];
  cl_uint ao = (cl_uint)a_off, go = (cl_uint)g_off, nu = (cl_uint)n,
          per = per_item(m);
  cl_int act = m->cfg.activation == RETCL_ACT_SWISH ? 1 : 0;
  cl_int err_ = CL_SUCCESS;
  ARG(k, 0, a);
  ARG(k, 1, ao);
  ARG(k, 2, g);
  ARG(k, 3, go);
  ARG(k, 4, nu);
  ARG(k, 5, act);
  ARG(k, 6, per);
  return enqueue(m, TF_K_GLU, err_, div_up(n, per), 0, e);
}

int tf_kv_append(tf_model *m, tf_cache *c, size_t layer, size_t T, cl_mem k,
                 size_t k_off, cl_mem v, size_t v_off, tf_err *e) {
  cl_kernel kn = m->kernels[TF_K_KV_APPEND];
  cl_uint ko = (cl_uint)k_off, vo = (cl_uint)v_off, Tu = (cl_uint)T,
          H = (cl_uint)m->cfg.heads, cap = (cl_uint)c->cap,
          pos0 = (cl_uint)c->position, B = (cl_uint)c->batch, per = per_item(m);
  cl_int err_ = CL_SUCCESS;
  ARG(kn, 0, k);
  ARG(kn, 1, ko);
  ARG(kn, 2, v);
  ARG(kn, 3, vo);
  ARG(kn, 4, c->k[layer]);
  ARG(kn, 5, c->v[layer]);
  ARG(kn, 6, Tu);
  ARG(kn, 7, H);
  ARG(kn, 8, cap);
  ARG(kn, 9, pos0);
  ARG(kn, 10, B);
  ARG(kn, 11, per);
  return enqueue(m, TF_K_KV_APPEND, err_, div_up(c->batch * T * m->cfg.d, per),
                 0, e);
}

/* ---- attention ---------------------------------------------------------- */

void tf_decode_plan(const tf_model *m, size_t B, size_t n, size_t *splits,
                    size_t *chunk) {
  size_t len;
  if (m->dev.is_cpu) {
    /* Enough work-items to give every core a few (B*H may already do it),
     * but chunks of at least TF_CPU_MIN_CHUNK positions, so the partial
     * results and their merge stay small next to the chunks' own work. */
    const size_t bh = B * m->cfg.heads, want = 4 * (size_t)m->dev.units;
    size_t s = div_up(want, bh);
    const size_t most = div_up(n, TF_CPU_MIN_CHUNK);
    if (s > most) s = most;
    if (s < 1) s = 1;
    len = div_up(n, s);
  } else {
    len = TF_GPU_DECODE_CHUNK; /* the kernel's local score array */
  }
  *chunk = len;
  *splits = div_up(n, len); /* no empty chunk */
}

static float attn_scale(const tf_model *m) {
  return (float)(1.0 / sqrt((double)m->head_dim));
}

int tf_attn_decode(tf_model *m, tf_cache *c, size_t layer, cl_mem q,
                   size_t q_off, cl_mem out, size_t out_off, cl_mem part,
                   size_t part_off, tf_err *e) {
  const size_t n = c->position + 1, bh = c->batch * m->cfg.heads;
  size_t splits, chunk;
  tf_decode_plan(m, c->batch, n, &splits, &chunk);
  const size_t ml_off = part_off + bh * splits * m->head_dim;
  cl_kernel k = m->kernels[TF_K_DECODE_PARTIAL];
  cl_uint qo = (cl_uint)q_off, cap = (cl_uint)c->cap, nu = (cl_uint)n,
          ch = (cl_uint)chunk, sp = (cl_uint)splits;
  float scale = attn_scale(m);
  cl_int err_ = CL_SUCCESS;
  const size_t groups = bh * splits;
  cl_uint acc_off = (cl_uint)part_off, mlo = (cl_uint)ml_off,
          groups_u = (cl_uint)groups;
  ARG(k, 0, q);
  ARG(k, 1, qo);
  ARG(k, 2, c->k[layer]);
  ARG(k, 3, c->v[layer]);
  ARG(k, 4, cap);
  ARG(k, 5, nu);
  ARG(k, 6, ch);
  ARG(k, 7, sp);
  ARG(k, 8, scale);
  ARG(k, 9, part);
  ARG(k, 10, acc_off);
  ARG(k, 11, mlo);
  ARG(k, 12, groups_u);
  if (m->dev.is_cpu) {
    if (enqueue_cpu_items(m, TF_K_DECODE_PARTIAL, err_, groups, e)) return -1;
  } else if (enqueue(m, TF_K_DECODE_PARTIAL, err_, groups * TF_GPU_WG,
                     TF_GPU_WG, e)) {
    return -1;
  }
  k = m->kernels[TF_K_DECODE_COMBINE];
  cl_uint oo = (cl_uint)out_off;
  ARG(k, 0, part);
  ARG(k, 1, acc_off);
  ARG(k, 2, mlo);
  ARG(k, 3, sp);
  ARG(k, 4, out);
  ARG(k, 5, oo);
  return enqueue(m, TF_K_DECODE_COMBINE, err_, bh * (m->head_dim / m->dev.hvw),
                 0, e);
}

int tf_attn_prefill(tf_model *m, tf_cache *c, size_t layer, size_t T, cl_mem q,
                    size_t q_off, cl_mem out, size_t out_off, tf_err *e) {
  const size_t bh = c->batch * m->cfg.heads;
  const size_t rows = m->dev.is_cpu ? m->dev.cpu_rows : TF_GPU_PREFILL_ROWS;
  const size_t tiles = div_up(T, rows);
  cl_kernel k = m->kernels[TF_K_PREFILL];
  cl_uint qo = (cl_uint)q_off, cap = (cl_uint)c->cap, oo = (cl_uint)out_off,
          Tu = (cl_uint)T, H = (cl_uint)m->cfg.heads,
          pos0 = (cl_uint)c->position, tl = (cl_uint)tiles,
          count = (cl_uint)(bh * tiles);
  float scale = attn_scale(m);
  cl_int err_ = CL_SUCCESS;
  ARG(k, 0, q);
  ARG(k, 1, qo);
  ARG(k, 2, c->k[layer]);
  ARG(k, 3, c->v[layer]);
  ARG(k, 4, cap);
  ARG(k, 5, out);
  ARG(k, 6, oo);
  ARG(k, 7, Tu);
  ARG(k, 8, H);
  ARG(k, 9, pos0);
  ARG(k, 10, scale);
  ARG(k, 11, tl);
  ARG(k, 12, count);
  if (m->dev.is_cpu) return enqueue_cpu_items(m, TF_K_PREFILL, err_, count, e);
  return enqueue(m, TF_K_PREFILL, err_, bh * tiles * TF_GPU_WG, TF_GPU_WG, e);
}
