/* rotation.c - rotation plans, retcl_rotate and its transpose
 * retcl_rotate_backward (docs/design.md §1.1, §1.7); the kernel is
 * cl/rotation.cl. */
#include "ops/rotation.h"

#include "ops/limits.h"
#include "ops/packing.h"
#include "runtime/context.h"
#include "runtime/launch.h"
#include "runtime/status.h"
#include "runtime/validate.h"

#include <math.h>
#include <stdlib.h>

struct retcl_rotation {
  retcl_context *ctx;
  size_t head_dim;
  cl_mem turn_rate; /* head_dim/2 ulongs: θ_i / 2π as a 2^-64 fraction */
  cl_mem log_zeta;  /* head_dim/2 floats: log ζ_i for xPos */
  int use_xpos;
  float inv_scale_base;
};

/* θ/(2π) modulo one turn, as an unsigned 64-bit fraction. long double keeps
 * the fraction exact well past 2^24 positions. */
static uint64_t turns_fixed_point(long double theta) {
  const long double two_pi = 6.283185307179586476925286766559L;
  long double t = theta / two_pi;
  t -= floorl(t);
  long double scaled = ldexpl(t, 64);
  if (scaled >= ldexpl(1.0L, 64)) return 0; /* t rounded up to one turn */
  return (uint64_t)scaled;
}

retcl_status retcl_rotation_create(retcl_context *ctx, size_t head_dim,
                                   const float *theta, float xpos_scale_base,
                                   retcl_rotation **out) {
  retcl_status st = retcl__check_ctx(ctx);
  if (st != RETCL_SUCCESS) return st;
  const char *op = "retcl_rotation_create";
  if (!out)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT, "%s: out is NULL",
                       op);
  *out = NULL;
  if (head_dim < 2 || head_dim > RETCL_MAX_HEAD_DIM || head_dim % 2)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                       "%s: head_dim = %zu must be even and in [2, %d]", op,
                       head_dim, RETCL_MAX_HEAD_DIM);
  if (!(xpos_scale_base >= 0.0f) || isinf(xpos_scale_base))
    return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                       "%s: xpos_scale_base = %g must be 0 (off) or a finite "
                       "positive number",
                       op, (double)xpos_scale_base);
  const size_t pairs = head_dim / 2;
  if (theta)
    for (size_t i = 0; i < pairs; ++i)
      if (!isfinite(theta[i]))
        return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                           "%s: theta[%zu] is not finite", op, i);

  uint64_t *rates = malloc(pairs * sizeof *rates);
  float *log_zeta = malloc(pairs * sizeof *log_zeta);
  retcl_rotation *rot = calloc(1, sizeof *rot);
  if (!rates || !log_zeta || !rot) {
    st = retcl__fail(ctx, RETCL_ERROR_OUT_OF_MEMORY, "%s: host allocation",
                     op);
    goto fail;
  }
  for (size_t i = 0; i < pairs; ++i) {
    long double th;
    if (theta)
      th = theta[i];
    else if (pairs == 1)
      th = 1.0L;
    else
      th = powl(10000.0L, -(long double)i / (long double)(pairs - 1));
    rates[i] = turns_fixed_point(th);
    log_zeta[i] = (float)log((2.0 * i + 0.4 * head_dim) / (1.4 * head_dim));
  }
  cl_int err = CL_SUCCESS;
  rot->turn_rate =
      clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                     pairs * sizeof *rates, rates, &err);
  if (!rot->turn_rate) {
    st = retcl__cl_fail(ctx, "clCreateBuffer(turn_rate)", err);
    goto fail;
  }
  rot->log_zeta =
      clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                     pairs * sizeof *log_zeta, log_zeta, &err);
  if (!rot->log_zeta) {
    st = retcl__cl_fail(ctx, "clCreateBuffer(log_zeta)", err);
    goto fail;
  }
  rot->ctx = ctx;
  rot->head_dim = head_dim;
  rot->use_xpos = xpos_scale_base > 0.0f;
  rot->inv_scale_base = rot->use_xpos ? 1.0f / xpos_scale_base : 0.0f;
  free(rates);
  free(log_zeta);
  *out = rot;
  return RETCL_SUCCESS;
fail:
  free(rates);
  free(log_zeta);
  retcl_rotation_destroy(rot);
  return st;
}

size_t retcl__rotation_dim(const retcl_rotation *rot) { return rot->head_dim; }

void retcl_rotation_destroy(retcl_rotation *rot) {
  if (!rot) return;
  if (rot->turn_rate) clReleaseMemObject(rot->turn_rate);
  if (rot->log_zeta) clReleaseMemObject(rot->log_zeta);
  free(rot);
}

retcl_status retcl__rotate_check(retcl_context *ctx, const char *op,
                                 const retcl_rotation *rot,
                                 const retcl_rotation_desc *desc) {
  retcl_status st;
  if (rot->ctx != ctx)
    return retcl__fail(ctx, RETCL_ERROR_CONTEXT_MISMATCH,
                       "%s: rot was created on another retcl_context", op);
  if (desc->layout != RETCL_LAYOUT_TOKEN_MAJOR &&
      desc->layout != RETCL_LAYOUT_HEAD_MAJOR)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: desc->layout = %d is not a retcl_layout", op,
                       (int)desc->layout);
  if ((st = retcl__check_dim(ctx, op, "desc->batch", desc->batch, 1,
                             RETCL_MAX_INDEX)) ||
      (st = retcl__check_dim(ctx, op, "desc->tokens", desc->tokens, 1,
                             RETCL_MAX_INDEX)) ||
      (st = retcl__check_dim(ctx, op, "desc->heads", desc->heads, 1,
                             RETCL_MAX_INDEX)))
    return st;
  if (desc->packing.count) {
    size_t states;
    return retcl__packing_check(ctx, op, &desc->packing, desc->batch,
                                desc->tokens, desc->layout, desc->pos0,
                                &states);
  }
  if (desc->pos0 > RETCL_MAX_POSITION - desc->tokens)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                       "%s: positions pos0 + tokens = %zu + %zu exceed 2^32",
                       op, desc->pos0, desc->tokens);
  return RETCL_SUCCESS;
}

/* One launch of the kernel: the forward map (inverse 0) or its transpose
 * (inverse 1) with the same angles and xPos factors. */
static retcl_status rotate_launch(retcl_context *ctx,
                                  const retcl_rotation *rot,
                                  const retcl_rotation_desc *desc,
                                  retcl_buffer in, retcl_buffer out,
                                  cl_mem table, int inverse_map,
                                  cl_uint num_wait, const cl_event *wait,
                                  cl_event *event) {
  const retcl_strides s =
      retcl__strides(desc->layout, desc->tokens, desc->heads, rot->head_dim);
  const cl_uint in_off = (cl_uint)in.offset, out_off = (cl_uint)out.offset;
  const cl_uint batch = (cl_uint)desc->batch, heads = (cl_uint)desc->heads,
                tokens = (cl_uint)desc->tokens;
  const cl_ulong pos0 = desc->pos0;
  const cl_int use_xpos = rot->use_xpos;
  const cl_float inv_base = rot->inv_scale_base;
  const cl_float sign = desc->is_key ? -1.0f : 1.0f;
  const cl_int inverse = inverse_map;
  const cl_int has_table = table != NULL;
  const cl_mem pos_mem = table ? table : rot->turn_rate; /* never read */
  const retcl_karg args[] = {
      RETCL_KARG("in", in.mem),          RETCL_KARG("in_off", in_off),
      RETCL_KARG("out", out.mem),        RETCL_KARG("out_off", out_off),
      RETCL_KARG("stride_b", s.batch),   RETCL_KARG("stride_t", s.token),
      RETCL_KARG("stride_h", s.head),    RETCL_KARG("batch", batch),
      RETCL_KARG("heads", heads),        RETCL_KARG("tokens", tokens),
      RETCL_KARG("pos0", pos0),
      /* never read without a table */
      RETCL_KARG("token_pos", pos_mem),
      RETCL_KARG("has_token_pos", has_table),
      RETCL_KARG("turn_rate", rot->turn_rate),
      RETCL_KARG("log_zeta", rot->log_zeta),
      RETCL_KARG("use_xpos", use_xpos),  RETCL_KARG("inv_scale_base", inv_base),
      RETCL_KARG("xpos_sign", sign),     RETCL_KARG("inverse", inverse)};
  /* One item per (pair, token); rotation.group_tokens tokens per group, or
   * the driver's choice. */
  retcl_grid grid = {2, {rot->head_dim / 2, desc->tokens, 1}, {0, 0, 0}};
  const size_t tokens_per_group =
      (size_t)retcl__param(ctx, RETCL_P_ROTATION_GROUP_TOKENS);
  if (tokens_per_group) {
    grid.local[0] = rot->head_dim / 2;
    grid.local[1] = tokens_per_group;
  }
  return retcl__launch(ctx, RETCL_KERNEL_ROTATE, args, RETCL_NARGS(args),
                       &grid, num_wait, wait, event);
}

retcl_status retcl__rotate_enqueue(retcl_context *ctx,
                                   const retcl_rotation *rot,
                                   const retcl_rotation_desc *desc,
                                   retcl_buffer in, retcl_buffer out,
                                   cl_mem table, cl_uint num_wait,
                                   const cl_event *wait, cl_event *event) {
  return rotate_launch(ctx, rot, desc, in, out, table, 0, num_wait, wait,
                       event);
}

retcl_status retcl__rotate_backward_enqueue(retcl_context *ctx,
                                            const retcl_rotation *rot,
                                            const retcl_rotation_desc *desc,
                                            retcl_buffer d_out,
                                            retcl_buffer d_in, cl_mem table,
                                            cl_uint num_wait,
                                            const cl_event *wait,
                                            cl_event *event) {
  return rotate_launch(ctx, rot, desc, d_out, d_in, table, 1, num_wait, wait,
                       event);
}

/* The public calls: checks, then one launch. src is read, dst written
 * (in and out of the forward, d_out and d_in of the backward). */
static retcl_status rotate_call(retcl_context *ctx, const char *op,
                                const char *src_name, const char *dst_name,
                                const retcl_rotation *rot,
                                const retcl_rotation_desc *desc,
                                retcl_buffer src, retcl_buffer dst,
                                int inverse_map, cl_uint num_wait,
                                const cl_event *wait, cl_event *event) {
  retcl_status st = retcl__check_ctx(ctx);
  if (st != RETCL_SUCCESS) return st;
  if (!rot || !desc)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT, "%s: %s is NULL", op,
                       !rot ? "rot" : "desc");
  if ((st = retcl__rotate_check(ctx, op, rot, desc))) return st;
  const size_t elems = retcl__mul(
      retcl__mul(retcl__mul(desc->batch, desc->tokens), desc->heads),
      rot->head_dim);
  if ((st = retcl__check_buffer(ctx, op, src_name, src, elems)) ||
      (st = retcl__check_buffer(ctx, op, dst_name, dst, elems)) ||
      (st = retcl__check_wait_list(ctx, op, num_wait, wait)))
    return st;
  if (retcl__overlaps(src, elems, dst, elems) && src.offset != dst.offset)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: %s and %s overlap without being the same range",
                       op, src_name, dst_name);
  cl_mem table = NULL;
  if ((st = retcl__prepare(ctx, RETCL_FAMILY_BIT(RETCL_FAMILY_ROTATION))) ||
      (desc->packing.count &&
       (st = retcl__packing_upload(ctx, op, &desc->packing, desc->tokens,
                                   desc->pos0, 0, 0, 0, &table))))
    return st;
  st = rotate_launch(ctx, rot, desc, src, dst, table, inverse_map, num_wait,
                     wait, event);
  if (table) clReleaseMemObject(table); /* kept alive by the launch */
  return st;
}

retcl_status retcl_rotate(retcl_context *ctx, const retcl_rotation *rot,
                          const retcl_rotation_desc *desc, retcl_buffer in,
                          retcl_buffer out, cl_uint num_events_in_wait_list,
                          const cl_event *event_wait_list, cl_event *event) {
  return rotate_call(ctx, "retcl_rotate", "in", "out", rot, desc, in, out, 0,
                     num_events_in_wait_list, event_wait_list, event);
}

retcl_status retcl_rotate_backward(retcl_context *ctx,
                                   const retcl_rotation *rot,
                                   const retcl_rotation_desc *desc,
                                   retcl_buffer d_out, retcl_buffer d_in,
                                   cl_uint num_events_in_wait_list,
                                   const cl_event *event_wait_list,
                                   cl_event *event) {
  return rotate_call(ctx, "retcl_rotate_backward", "d_out", "d_in", rot, desc,
                     d_out, d_in, 1, num_events_in_wait_list, event_wait_list,
                     event);
}
