/* tf_ops.c - launches of the baseline's operations on the context's queue:
 * projections (RetCL's retcl_linear), RetCL's RMSNorm and
 * rotation, the elementwise kernels and attention. Callers have checked
 * sizes (every index fits the kernels' 32-bit arithmetic). */
#include <math.h>

#include "tf_internal.h"

/* A kernel's arguments in order: size and address of each value. */
typedef struct karg {
  size_t size;
  const void *value;
} karg;
#define KA(v) {sizeof(v), &(v)}
#define NARGS(a) (sizeof(a) / sizeof((a)[0]))

/* Set kernel id's arguments and launch it over `global` items. */
static int enqueue(tf_model *m, tf_kernel_id id, const karg *args,
                   size_t nargs, size_t global, size_t local, tf_err *e) {
  for (size_t i = 0; i < nargs; ++i) {
    cl_int err = clSetKernelArg(m->kernels[id], (cl_uint)i, args[i].size,
                                args[i].value);
    if (err != CL_SUCCESS) return tf_cl_fail(e, "clSetKernelArg", err);
  }
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
static int enqueue_cpu_items(tf_model *m, tf_kernel_id id, const karg *args,
                             size_t nargs, size_t count, tf_err *e) {
  const size_t local = TF_CPU_GROUP;
  return enqueue(m, id, args, nargs, (count + local - 1) / local * local,
                 local, e);
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
                           is_key, {0, NULL, NULL, NULL}};
  retcl_status st = retcl_rotate(m->ctx, m->rot, &d, retcl_buf(x, off),
                                 retcl_buf(x, off), 0, NULL, NULL);
  return st ? tf_retcl_fail(e, m->ctx, "RoPE (retcl_rotate)", st) : 0;
}

/* ---- elementwise -------------------------------------------------------- */

int tf_embed(tf_model *m, size_t rows, cl_mem out, tf_err *e) {
  cl_uint r = (cl_uint)rows, w = (cl_uint)m->cfg.d, per = per_item(m);
  const karg args[] = {KA(m->tokens), KA(m->embed), KA(out),
                       KA(r),         KA(w),        KA(per)};
  return enqueue(m, TF_K_EMBED, args, NARGS(args),
                 div_up(rows * m->cfg.d, per), 0, e);
}

int tf_residual(tf_model *m, size_t n, cl_mem x, size_t x_off, cl_mem y,
                size_t y_off, tf_err *e) {
  cl_uint xo = (cl_uint)x_off, yo = (cl_uint)y_off, nu = (cl_uint)n,
          per = per_item(m);
  const karg args[] = {KA(x), KA(xo), KA(y), KA(yo), KA(nu), KA(per)};
  return enqueue(m, TF_K_RESIDUAL, args, NARGS(args), div_up(n, per), 0, e);
}

int tf_glu(tf_model *m, size_t n, cl_mem a, size_t a_off, cl_mem g,
           size_t g_off, tf_err *e) {
  cl_uint ao = (cl_uint)a_off, go = (cl_uint)g_off, nu = (cl_uint)n,
          per = per_item(m);
  cl_int act = m->cfg.activation == RETCL_ACT_SWISH ? 1 : 0;
  const karg args[] = {KA(a), KA(ao), KA(g), KA(go), KA(nu), KA(act), KA(per)};
  return enqueue(m, TF_K_GLU, args, NARGS(args), div_up(n, per), 0, e);
}

int tf_kv_append(tf_model *m, tf_cache *c, size_t layer, size_t T, cl_mem k,
                 size_t k_off, cl_mem v, size_t v_off, tf_err *e) {
  cl_uint ko = (cl_uint)k_off, vo = (cl_uint)v_off, Tu = (cl_uint)T,
          H = (cl_uint)m->cfg.heads, cap = (cl_uint)c->cap,
          pos0 = (cl_uint)c->position, B = (cl_uint)c->batch, per = per_item(m);
  const karg args[] = {KA(k),   KA(ko),   KA(v),           KA(vo),
                       KA(c->k[layer]),     KA(c->v[layer]), KA(Tu),
                       KA(H),   KA(cap),  KA(pos0),        KA(B),
                       KA(per)};
  return enqueue(m, TF_K_KV_APPEND, args, NARGS(args),
                 div_up(c->batch * T * m->cfg.d, per), 0, e);
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
  cl_uint qo = (cl_uint)q_off, cap = (cl_uint)c->cap, nu = (cl_uint)n,
          ch = (cl_uint)chunk, sp = (cl_uint)splits;
  float scale = attn_scale(m);
  const size_t groups = bh * splits;
  cl_uint acc_off = (cl_uint)part_off, mlo = (cl_uint)ml_off,
          groups_u = (cl_uint)groups;
  const karg pa[] = {KA(q),     KA(qo),   KA(c->k[layer]), KA(c->v[layer]),
                     KA(cap),   KA(nu),   KA(ch),          KA(sp),
                     KA(scale), KA(part), KA(acc_off),     KA(mlo),
                     KA(groups_u)};
  if (m->dev.is_cpu) {
    if (enqueue_cpu_items(m, TF_K_DECODE_PARTIAL, pa, NARGS(pa), groups, e))
      return -1;
  } else if (enqueue(m, TF_K_DECODE_PARTIAL, pa, NARGS(pa), groups * TF_GPU_WG,
                     TF_GPU_WG, e)) {
    return -1;
  }
  cl_uint oo = (cl_uint)out_off;
  const karg ca[] = {KA(part), KA(acc_off), KA(mlo), KA(sp), KA(out), KA(oo)};
  return enqueue(m, TF_K_DECODE_COMBINE, ca, NARGS(ca),
                 bh * (m->head_dim / m->dev.hvw), 0, e);
}

int tf_attn_prefill(tf_model *m, tf_cache *c, size_t layer, size_t T, cl_mem q,
                    size_t q_off, cl_mem out, size_t out_off, tf_err *e) {
  const size_t bh = c->batch * m->cfg.heads;
  const size_t rows = m->dev.is_cpu ? m->dev.cpu_rows : TF_GPU_PREFILL_ROWS;
  const size_t tiles = div_up(T, rows);
  cl_uint qo = (cl_uint)q_off, cap = (cl_uint)c->cap, oo = (cl_uint)out_off,
          Tu = (cl_uint)T, H = (cl_uint)m->cfg.heads,
          pos0 = (cl_uint)c->position, tl = (cl_uint)tiles,
          count = (cl_uint)(bh * tiles);
  float scale = attn_scale(m);
  const karg args[] = {KA(q),   KA(qo),   KA(c->k[layer]), KA(c->v[layer]),
                       KA(cap), KA(out),  KA(oo),          KA(Tu),
                       KA(H),   KA(pos0), KA(scale),       KA(tl),
                       KA(count)};
  if (m->dev.is_cpu)
    return enqueue_cpu_items(m, TF_K_PREFILL, args, NARGS(args), count, e);
  return enqueue(m, TF_K_PREFILL, args, NARGS(args), bh * tiles * TF_GPU_WG,
                 TF_GPU_WG, e);
}
