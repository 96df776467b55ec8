/* optimizer.c - AdamW with global gradient-norm clipping, all on the
 * device (docs/design.md §1.7), and the learning-rate schedule (host).
 *
 * A step over one or several tensors is: the sum of squares of every
 * gradient in fixed ranges (retcl_grad_norm_partial, one launch per
 * tensor, partial sums side by side in a workspace), one work-group adding
 * the partials in order into the norm and the clip factor
 * (retcl_grad_norm_finish), then the update of each tensor
 * (retcl_adamw), which reads the factor itself: clipping costs no pass
 * over the gradients beyond the norm's. Without clipping and without a
 * norm to report only the updates run. The ranges depend on the tensor
 * sizes and the context's record alone, so the norm is the same bits on
 * every run. The optimizer's state is the caller's: m and v are plain
 * buffers and the step count an argument. */
#include "ops/optimizer.h"

#include "runtime/context.h"
#include "runtime/events.h"
#include "runtime/launch.h"
#include "runtime/status.h"
#include "runtime/validate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static const char *const OP_STEP = "retcl_adamw_step";
static const char *const OP_MANY = "retcl_adamw_step_many";
static const char *const OP_NORM = "retcl_grad_norm";

void retcl_adamw_default(retcl_adamw *opt) {
  if (!opt) return;
  opt->lr = 1e-3f;
  opt->beta1 = 0.9f;
  opt->beta2 = 0.999f;
  opt->eps = 1e-8f;
  opt->weight_decay = 0.01f;
  opt->clip_norm = 0.0f;
}

double retcl_lr_schedule(double peak_lr, size_t step, size_t warmup,
                         size_t total, double floor_ratio) {
  if (!isfinite(peak_lr) || peak_lr < 0.0 || !(floor_ratio >= 0.0) ||
      floor_ratio > 1.0)
    return NAN;
  if (step < warmup) return peak_lr * (double)step / (double)warmup;
  const double floor_lr = peak_lr * floor_ratio;
  if (step >= total) return floor_lr;
  /* warmup <= step < total, so total > warmup. */
  const double progress = (double)(step - warmup) / (double)(total - warmup);
  return floor_lr +
         (peak_lr - floor_lr) * 0.5 * (1.0 + cos(3.14159265358979323846 * progress));
}

retcl_status retcl__adamw_check(retcl_context *ctx, const char *op,
                                const retcl_adamw *opt, size_t step) {
  if (!opt)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT, "%s: opt is NULL",
                       op);
  const char *bad = NULL, *need = NULL;
  double value = 0.0;
  if (!isfinite(opt->lr) || opt->lr < 0.0f)
    bad = "lr", value = opt->lr, need = "finite and >= 0";
  else if (!(opt->beta1 >= 0.0f && opt->beta1 < 1.0f))
    bad = "beta1", value = opt->beta1, need = "in [0, 1)";
  else if (!(opt->beta2 >= 0.0f && opt->beta2 < 1.0f))
    bad = "beta2", value = opt->beta2, need = "in [0, 1)";
  else if (!isfinite(opt->eps) || !(opt->eps > 0.0f))
    bad = "eps", value = opt->eps, need = "finite and > 0";
  else if (!isfinite(opt->weight_decay) || opt->weight_decay < 0.0f)
    bad = "weight_decay", value = opt->weight_decay, need = "finite and >= 0";
  else if (!isfinite(opt->clip_norm) || opt->clip_norm < 0.0f)
    bad = "clip_norm", value = opt->clip_norm,
    need = "finite and >= 0 (0: no clipping)";
  if (bad)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: opt->%s = %g must be %s", op, bad, value, need);
  if (step == 0)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: step = 0; steps count from 1 (bias correction "
                       "divides by 1 - beta^step)",
                       op);
  return RETCL_SUCCESS;
}

/* ---- the norm's split ------------------------------------------------------ */

/* How the norm of a tensor of n floats is cut: `count` ranges of `chunk`
 * elements (the last shorter), each summed by one work-item (cpu) or one
 * group of `lanes` (gpu). */
typedef struct norm_split {
  size_t chunk, count, lanes;
} norm_split;

/* Work-items of a gpu group: optimizer.group_items within the kernel's and
 * the device's limits, half the local memory, and `len`. */
static size_t gpu_lanes(const retcl_context *ctx, retcl_kernel_id id,
                        size_t len) {
  size_t lanes = (size_t)retcl__param(ctx, RETCL_P_OPTIMIZER_GROUP_ITEMS);
  const size_t limit = retcl__group_limit(ctx, id);
  const size_t local_floats = retcl__local_mem_limit(ctx) / 2 / sizeof(float);
  if (lanes > limit) lanes = limit;
  if (local_floats && lanes > local_floats) lanes = local_floats;
  if (lanes > len) lanes = len;
  return lanes ? lanes : 1;
}

static norm_split split_norm(const retcl_context *ctx, size_t n) {
  norm_split s;
  if (retcl__cpu_access(ctx, RETCL_P_OPTIMIZER_ACCESS)) {
    s.chunk = (size_t)retcl__param(ctx, RETCL_P_OPTIMIZER_PER_ITEM);
    s.lanes = 1;
  } else {
    s.lanes = gpu_lanes(ctx, RETCL_KERNEL_GRAD_NORM_PARTIAL, n);
    size_t groups = (n + s.lanes - 1) / s.lanes;
    const size_t most = (size_t)retcl__param(ctx, RETCL_P_OPTIMIZER_NORM_GROUPS);
    if (groups > most) groups = most;
    s.chunk = (n + groups - 1) / groups;
  }
  s.count = (n + s.chunk - 1) / s.chunk;
  return s;
}

size_t retcl__grad_norm_partials(const retcl_context *ctx, size_t n) {
  return split_norm(ctx, n).count;
}

retcl_status retcl__optimizer_reserve(retcl_context *ctx, size_t partials,
                                      cl_mem *ws) {
  return retcl__workspace(ctx, RETCL_WORKSPACE_TRAIN_OPS,
                          (partials + 2) * sizeof(cl_float), ws);
}

retcl_status retcl__grad_norm_partial_enqueue(retcl_context *ctx,
                                              retcl_buffer grad, size_t n,
                                              cl_mem ws, size_t part_off) {
  const norm_split s = split_norm(ctx, n);
  const cl_uint g_off = (cl_uint)grad.offset, n_u = (cl_uint)n,
                chunk = (cl_uint)s.chunk, p_off = (cl_uint)part_off;
  const retcl_karg args[] = {
      RETCL_KARG("grad", grad.mem), RETCL_KARG("g_off", g_off),
      RETCL_KARG("n", n_u),         RETCL_KARG("chunk", chunk),
      RETCL_KARG("partial", ws),    RETCL_KARG("part_off", p_off),
      RETCL_KLOCAL("part", s.lanes * sizeof(cl_float))};
  const retcl_grid grid = {1, {s.count * s.lanes, 1, 1}, {s.lanes, 1, 1}};
  return retcl__launch(ctx, RETCL_KERNEL_GRAD_NORM_PARTIAL, args,
                       RETCL_NARGS(args), &grid, 0, NULL, NULL);
}

retcl_status retcl__grad_norm_finish_enqueue(retcl_context *ctx, cl_mem ws,
                                             size_t partials, float clip_norm,
                                             retcl_buffer norm_out) {
  const size_t lanes =
      retcl__cpu_access(ctx, RETCL_P_OPTIMIZER_ACCESS)
          ? 1
          : gpu_lanes(ctx, RETCL_KERNEL_GRAD_NORM_FINISH, partials);
  const cl_int has_out = norm_out.mem != NULL;
  if (!has_out) norm_out = retcl_buf(ws, 0); /* never written */
  const cl_uint count = (cl_uint)partials, scratch_off = (cl_uint)partials,
                norm_off = (cl_uint)norm_out.offset;
  const cl_float clip = clip_norm;
  const retcl_karg args[] = {
      RETCL_KARG("partial", ws),          RETCL_KARG("count", count),
      RETCL_KARG("clip_norm", clip),      RETCL_KARG("scratch", ws),
      RETCL_KARG("scratch_off", scratch_off),
      RETCL_KARG("norm_out", norm_out.mem), RETCL_KARG("norm_off", norm_off),
      RETCL_KARG("has_norm_out", has_out),
      RETCL_KLOCAL("part", lanes * sizeof(cl_float))};
  const retcl_grid grid = {1, {lanes, 1, 1}, {lanes, 1, 1}};
  return retcl__launch(ctx, RETCL_KERNEL_GRAD_NORM_FINISH, args,
                       RETCL_NARGS(args), &grid, 0, NULL, NULL);
}

/* 1 − β^t, accurate when β^t is close to 1. */
static double bias_correction(double beta, size_t step) {
  return beta > 0.0 ? -expm1((double)step * log(beta)) : 1.0;
}

retcl_status retcl__adamw_enqueue(retcl_context *ctx, const retcl_adamw *opt,
                                  size_t step, size_t n, retcl_buffer param,
                                  retcl_buffer grad, retcl_buffer m,
                                  retcl_buffer v, cl_mem ws, size_t partials) {
  const int cpu = retcl__cpu_access(ctx, RETCL_P_OPTIMIZER_ACCESS);
  const cl_uint per =
      cpu ? (cl_uint)retcl__param(ctx, RETCL_P_OPTIMIZER_PER_ITEM) : 1u;
  const double lr = opt->lr, b1 = opt->beta1, b2 = opt->beta2;
  const cl_int use_clip = ws != NULL;
  const cl_mem scratch = ws ? ws : grad.mem; /* not read without clipping */
  const cl_uint factor_off = ws ? (cl_uint)(partials + 1) : 0u;
  const cl_float beta1 = opt->beta1, beta2 = opt->beta2, eps = opt->eps;
  const cl_float one_minus_beta1 = (cl_float)(1.0 - b1),
                 one_minus_beta2 = (cl_float)(1.0 - b2),
                 step_size = (cl_float)(lr / bias_correction(b1, step)),
                 inv_sqrt_bc2 = (cl_float)(1.0 / sqrt(bias_correction(b2, step))),
                 decay = (cl_float)(1.0 - lr * (double)opt->weight_decay);
  const cl_uint p_off = (cl_uint)param.offset, g_off = (cl_uint)grad.offset,
                m_off = (cl_uint)m.offset, v_off = (cl_uint)v.offset,
                n_u = (cl_uint)n;
  const retcl_karg args[] = {
      RETCL_KARG("param", param.mem),   RETCL_KARG("p_off", p_off),
      RETCL_KARG("grad", grad.mem),     RETCL_KARG("g_off", g_off),
      RETCL_KARG("m", m.mem),           RETCL_KARG("m_off", m_off),
      RETCL_KARG("v", v.mem),           RETCL_KARG("v_off", v_off),
      RETCL_KARG("n", n_u),             RETCL_KARG("scratch", scratch),
      RETCL_KARG("factor_off", factor_off), RETCL_KARG("use_clip", use_clip),
      RETCL_KARG("beta1", beta1),
      RETCL_KARG("one_minus_beta1", one_minus_beta1),
      RETCL_KARG("beta2", beta2),
      RETCL_KARG("one_minus_beta2", one_minus_beta2),
      RETCL_KARG("step_size", step_size),
      RETCL_KARG("inv_sqrt_bc2", inv_sqrt_bc2), RETCL_KARG("eps", eps),
      RETCL_KARG("decay", decay),       RETCL_KARG("per_item", per)};
  const retcl_grid grid = retcl__grid(cpu, 1, (n + per - 1) / per, 1, 1);
  return retcl__launch(ctx, RETCL_KERNEL_ADAMW, args, RETCL_NARGS(args), &grid,
                       0, NULL, NULL);
}

/* ---- public calls ----------------------------------------------------------- */

/* A caller buffer with its printable name and extent. */
typedef struct named_buffer {
  retcl_buffer buf;
  size_t elems;
  char name[48];
} named_buffer;

/* Every buffer valid and pairwise disjoint. */
static retcl_status check_buffers(retcl_context *ctx, const char *op,
                                  const named_buffer *b, size_t count) {
  retcl_status st;
  for (size_t i = 0; i < count; ++i)
    if ((st = retcl__check_buffer(ctx, op, b[i].name, b[i].buf, b[i].elems)))
      return st;
  for (size_t i = 0; i < count; ++i)
    for (size_t j = i + 1; j < count; ++j)
      if (retcl__overlaps(b[i].buf, b[i].elems, b[j].buf, b[j].elems))
        return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                           "%s: %s overlaps %s", op, b[i].name, b[j].name);
  return RETCL_SUCCESS;
}

/* The buffers of a step: four per tensor, then grad_norm_out if given.
 * NULL (with a message) when the host list cannot be allocated. */
static named_buffer *list_buffers(retcl_context *ctx, const char *op,
                                  size_t count,
                                  const retcl_adamw_tensor *tensors,
                                  retcl_buffer norm_out, int flat,
                                  size_t *listed) {
  named_buffer *b = calloc(4 * count + 1, sizeof *b);
  if (!b) {
    retcl__fail(ctx, RETCL_ERROR_OUT_OF_MEMORY, "%s: host list of %zu buffers",
                op, 4 * count + 1);
    return NULL;
  }
  static const char *const field[] = {"param", "grad", "m", "v"};
  size_t k = 0;
  for (size_t t = 0; t < count; ++t) {
    const retcl_buffer bufs[] = {tensors[t].param, tensors[t].grad,
                                 tensors[t].m, tensors[t].v};
    for (int f = 0; f < 4; ++f, ++k) {
      b[k].buf = bufs[f];
      b[k].elems = tensors[t].n;
      if (flat)
        snprintf(b[k].name, sizeof b[k].name, "%s", field[f]);
      else
        snprintf(b[k].name, sizeof b[k].name, "tensors[%zu].%s", t, field[f]);
    }
  }
  if (norm_out.mem) {
    b[k].buf = norm_out;
    b[k].elems = 1;
    snprintf(b[k].name, sizeof b[k].name, "grad_norm_out");
    ++k;
  }
  *listed = k;
  return b;
}

static retcl_status step_tensors(retcl_context *ctx, const char *op,
                                 const retcl_adamw *opt, size_t step,
                                 size_t count,
                                 const retcl_adamw_tensor *tensors,
                                 retcl_buffer norm_out, int flat,
                                 cl_uint num_wait, const cl_event *wait,
                                 cl_event *event) {
  retcl_status st;
  if ((st = retcl__adamw_check(ctx, op, opt, step))) return st;
  for (size_t t = 0; t < count; ++t) {
    char name[48];
    if (flat)
      snprintf(name, sizeof name, "n");
    else
      snprintf(name, sizeof name, "tensors[%zu].n", t);
    if ((st = retcl__check_dim(ctx, op, name, tensors[t].n, 1,
                               RETCL_MAX_INDEX)))
      return st;
  }
  size_t listed = 0;
  named_buffer *bufs =
      list_buffers(ctx, op, count, tensors, norm_out, flat, &listed);
  if (!bufs) return RETCL_ERROR_OUT_OF_MEMORY;
  st = check_buffers(ctx, op, bufs, listed);
  free(bufs);
  if (st || (st = retcl__check_wait_list(ctx, op, num_wait, wait)) ||
      (st = retcl__prepare(ctx, RETCL_FAMILY_BIT(RETCL_FAMILY_OPTIMIZER))))
    return st;
  const int norm = opt->clip_norm > 0.0f || norm_out.mem;
  size_t partials = 0;
  cl_mem ws = NULL;
  if (norm) {
    for (size_t t = 0; t < count; ++t)
      partials += retcl__grad_norm_partials(ctx, tensors[t].n);
    if ((st = retcl__optimizer_reserve(ctx, partials, &ws))) return st;
  }
  if ((st = retcl__wait_for(ctx, num_wait, wait))) return st;
  if (norm) {
    size_t off = 0;
    for (size_t t = 0; t < count; ++t) {
      if ((st = retcl__grad_norm_partial_enqueue(ctx, tensors[t].grad,
                                                 tensors[t].n, ws, off)))
        return st;
      off += retcl__grad_norm_partials(ctx, tensors[t].n);
    }
    if ((st = retcl__grad_norm_finish_enqueue(ctx, ws, partials,
                                              opt->clip_norm, norm_out)))
      return st;
  }
  /* The factor is read only when clipping. */
  cl_mem factor_ws = opt->clip_norm > 0.0f ? ws : NULL;
  for (size_t t = 0; t < count; ++t)
    if ((st = retcl__adamw_enqueue(ctx, opt, step, tensors[t].n,
                                   tensors[t].param, tensors[t].grad,
                                   tensors[t].m, tensors[t].v, factor_ws,
                                   partials)))
      return st;
  return retcl__signal_done(ctx, event);
}

retcl_status retcl_adamw_step(retcl_context *ctx, const retcl_adamw *opt,
                              size_t step, size_t n, retcl_buffer param,
                              retcl_buffer grad, retcl_buffer m,
                              retcl_buffer v, retcl_buffer grad_norm_out,
                              cl_uint num_events_in_wait_list,
                              const cl_event *event_wait_list,
                              cl_event *event) {
  retcl_status st = retcl__check_ctx(ctx);
  if (st) return st;
  const retcl_adamw_tensor t = {param, grad, m, v, n};
  return step_tensors(ctx, OP_STEP, opt, step, 1, &t, grad_norm_out, 1,
                      num_events_in_wait_list, event_wait_list, event);
}

retcl_status retcl_adamw_step_many(retcl_context *ctx, const retcl_adamw *opt,
                                   size_t step, size_t count,
                                   const retcl_adamw_tensor *tensors,
                                   retcl_buffer grad_norm_out,
                                   cl_uint num_events_in_wait_list,
                                   const cl_event *event_wait_list,
                                   cl_event *event) {
  retcl_status st = retcl__check_ctx(ctx);
  if (st) return st;
  if (!tensors || !count)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT, "%s: %s", OP_MANY,
                       !tensors ? "tensors is NULL" : "count is 0");
  return step_tensors(ctx, OP_MANY, opt, step, count, tensors, grad_norm_out,
                      0, num_events_in_wait_list, event_wait_list, event);
}

retcl_status retcl_grad_norm(retcl_context *ctx, size_t n, retcl_buffer grad,
                             retcl_buffer norm_out,
                             cl_uint num_events_in_wait_list,
                             const cl_event *event_wait_list,
                             cl_event *event) {
  const char *op = OP_NORM;
  retcl_status st = retcl__check_ctx(ctx);
  if (st) return st;
  cl_mem ws = NULL;
  size_t partials = 0;
  if ((st = retcl__check_dim(ctx, op, "n", n, 1, RETCL_MAX_INDEX)) ||
      (st = retcl__check_buffer(ctx, op, "grad", grad, n)) ||
      (st = retcl__check_buffer(ctx, op, "norm_out", norm_out, 1)) ||
      (st = retcl__check_wait_list(ctx, op, num_events_in_wait_list,
                                   event_wait_list)))
    return st;
  if (retcl__overlaps(norm_out, 1, grad, n))
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: norm_out overlaps grad", op);
  if ((st = retcl__prepare(ctx, RETCL_FAMILY_BIT(RETCL_FAMILY_OPTIMIZER))))
    return st;
  partials = retcl__grad_norm_partials(ctx, n);
  if ((st = retcl__optimizer_reserve(ctx, partials, &ws)) ||
      (st = retcl__wait_for(ctx, num_events_in_wait_list, event_wait_list)) ||
      (st = retcl__grad_norm_partial_enqueue(ctx, grad, n, ws, 0)) ||
      (st = retcl__grad_norm_finish_enqueue(ctx, ws, partials, 0.0f,
                                            norm_out)))
    return st;
  return retcl__signal_done(ctx, event);
}
