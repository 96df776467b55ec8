/* model_save.c - a model's parameter vector seen from outside: its tensors
 * by name (retcl_model_tensor_info), the device buffer, and writing it (or
 * any vector laid out like it: a gradient, an optimizer moment) as
 * safetensors; retcl_model_save writes a checkpoint folder that
 * retcl_model_load reads back to the same model. */
#include "io/safetensors.h"
#include "io/safetensors_write.h"
#include "model/model.h"
#include "runtime/context.h"
#include "runtime/status.h"
#include "runtime/validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t retcl_model_tensor_count(const retcl_model *model) {
  return model ? model->layout.count : 0;
}

retcl_status retcl_model_tensor_info(const retcl_model *model, size_t index,
                                     retcl_tensor_info *info) {
  if (!model || !info) return RETCL_ERROR_INVALID_ARGUMENT;
  if (index >= model->layout.count)
    return retcl__fail(model->ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "retcl_model_tensor_info: index %zu is past the "
                       "model's %zu tensors",
                       index, model->layout.count);
  const retcl__tensor *t = &model->layout.tensors[index];
  info->name = t->name;
  info->rows = t->rows;
  info->cols = t->cols;
  info->offset = t->offset;
  return RETCL_SUCCESS;
}

size_t retcl_model_param_count(const retcl_model *model) {
  return model ? model->layout.total : 0;
}

retcl_buffer retcl_model_params(const retcl_model *model) {
  return model ? retcl_buf_typed(model->params, 0, model->wtype)
               : retcl_no_buf();
}

/* The whole vector `values` (layout.total elements from its offset), read
 * to the host as floats (16-bit values, such as a 16-bit model's
 * parameters, widened exactly); blocking. */
static retcl_status download(retcl_model *m, const char *op,
                             retcl_buffer values, float **out) {
  retcl_status st = retcl__check_weight(m->ctx, op, "values", values,
                                        m->layout.total);
  if (st) return st;
  const size_t n = m->layout.total, esize = retcl__dtype_size(values.type);
  float *host = malloc(n * sizeof *host);
  if (!host)
    return retcl__fail(m->ctx, RETCL_ERROR_OUT_OF_MEMORY,
                       "%s: host allocation for %zu floats", op, n);
  /* 16-bit values land in the second half of host, then widen in place
   * front to back (element i's 2 bytes sit past float i's 4 once written). */
  uint16_t *raw = (uint16_t *)(host + n) - n;
  const cl_int err = clEnqueueReadBuffer(
      m->ctx->queue, values.mem, CL_TRUE, values.offset * esize, n * esize,
      esize == sizeof(float) ? (void *)host : (void *)raw, 0, NULL, NULL);
  if (err != CL_SUCCESS) {
    free(host);
    return retcl__cl_fail(m->ctx, "clEnqueueReadBuffer", err);
  }
  if (values.type != RETCL_DTYPE_F32) {
    float (*widen)(uint16_t) = values.type == RETCL_DTYPE_F16
                                   ? retcl__f16_to_f32
                                   : retcl__bf16_to_f32;
    for (size_t i = 0; i < n; ++i) host[i] = widen(raw[i]);
  }
  *out = host;
  return RETCL_SUCCESS;
}

/* The tensors of the layout with their values in host, after `extra`
 * leading tensors the caller fills in; malloc'ed. */
static retcl__out_tensor *named(const retcl_model *m, const float *host,
                                size_t extra) {
  retcl__out_tensor *t = calloc(m->layout.count + extra, sizeof *t);
  if (!t) return NULL;
  for (size_t i = 0; i < m->layout.count; ++i) {
    const retcl__tensor *src = &m->layout.tensors[i];
    retcl__out_tensor *o = &t[extra + i];
    snprintf(o->name, sizeof o->name, "%s", src->name);
    o->rows = src->rows;
    o->cols = src->cols;
    o->data = host + src->offset;
  }
  return t;
}

/* download, then named: *host and *t (NULL until allocated) are the
 * caller's to free, whatever the status. */
static retcl_status download_named(retcl_model *m, const char *op,
                                   retcl_buffer values, size_t extra,
                                   float **host, retcl__out_tensor **t) {
  retcl_status st = download(m, op, values, host);
  if (st) return st;
  if (!(*t = named(m, *host, extra)))
    return retcl__fail(m->ctx, RETCL_ERROR_OUT_OF_MEMORY,
                       "%s: host allocation", op);
  return RETCL_SUCCESS;
}

/* Write t (the `extra` leading tensors, then the layout's) to path as
 * dtype; with config_dir, first that folder and its config.json. */
static retcl_status write_named(retcl_model *m, const char *op,
                                const char *path, const retcl__out_tensor *t,
                                size_t extra, retcl_dtype dtype,
                                const char *config_dir) {
  retcl_status st = RETCL_SUCCESS;
  if (config_dir) {
    st = retcl__make_dirs(config_dir);
    if (!st) st = retcl__write_config(op, &m->cfg, config_dir);
  }
  if (!st)
    st = retcl__safetensors_write(op, path, t, m->layout.count + extra, dtype,
                                  NULL, NULL);
  /* The writers report without a context: carry the message over. */
  if (st) retcl__fail(m->ctx, st, "%s", retcl_last_error(NULL));
  return st;
}

static int dtype_ok(retcl_dtype dtype) {
  return dtype == RETCL_DTYPE_F32 || dtype == RETCL_DTYPE_F16 ||
         dtype == RETCL_DTYPE_BF16;
}

retcl_status retcl_model_save_tensors(retcl_model *model, retcl_buffer values,
                                      const char *path,
                                      const char *const *scalar_names,
                                      const float *scalars,
                                      size_t scalar_count) {
  const char *op = "retcl_model_save_tensors";
  if (!model) return RETCL_ERROR_INVALID_ARGUMENT;
  retcl__clear_error(model->ctx);
  if (!path || (scalar_count && (!scalar_names || !scalars)))
    return retcl__fail(model->ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: %s is NULL", op,
                       !path ? "path" : !scalar_names ? "scalar_names"
                                                      : "scalars");
  for (size_t i = 0; i < scalar_count; ++i)
    if (!scalar_names[i] || !scalar_names[i][0] ||
        strlen(scalar_names[i]) >= RETCL__OUT_NAME_CAP)
      return retcl__fail(model->ctx, RETCL_ERROR_INVALID_ARGUMENT,
                         "%s: scalar_names[%zu] is empty or longer than %d "
                         "characters",
                         op, i, RETCL__OUT_NAME_CAP - 1);
  float *host = NULL;
  retcl__out_tensor *t = NULL;
  retcl_status st =
      download_named(model, op, values, scalar_count, &host, &t);
  if (!st) {
    for (size_t i = 0; i < scalar_count; ++i) {
      snprintf(t[i].name, sizeof t[i].name, "%s", scalar_names[i]);
      t[i].rows = 1;
      t[i].data = &scalars[i];
    }
    st = write_named(model, op, path, t, scalar_count, RETCL_DTYPE_F32, NULL);
  }
  free(t);
  free(host);
  return st;
}

retcl_status retcl_model_save(retcl_model *model, const char *dir,
                              retcl_dtype dtype) {
  const char *op = "retcl_model_save";
  if (!model) return RETCL_ERROR_INVALID_ARGUMENT;
  retcl_context *ctx = model->ctx;
  retcl__clear_error(ctx);
  if (!dir)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT, "%s: dir is NULL",
                       op);
  if (!dtype_ok(dtype))
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: dtype %d is not a retcl_dtype", op, (int)dtype);
  if (retcl__model_heads_split(model))
    return retcl__fail(ctx, RETCL_ERROR_UNSUPPORTED,
                       "%s: the model holds heads [%zu, %zu) of %zu only "
                       "(heads split); save a whole model",
                       op, model->head0, model->head0 + model->heads,
                       model->cfg.heads);
  const retcl_model_config *c = &model->cfg;
  const size_t Dk = c->embed_dim / c->heads;
  float *host = NULL, *angle = malloc(Dk * sizeof *angle);
  retcl__out_tensor *t = NULL;
  char *path = retcl__join_path(dir, "model.safetensors");
  retcl_status st =
      angle && path
          ? download_named(model, op, retcl_model_params(model), 2, &host, &t)
          : retcl__fail(ctx, RETCL_ERROR_OUT_OF_MEMORY, "%s: host allocation",
                        op);
  if (!st) {
    /* torchscale's buffers: each angle twice in a row, log γ per head. */
    for (size_t i = 0; i < Dk; ++i) angle[i] = model->theta[i / 2];
    t[0] = (retcl__out_tensor){"retnet_rel_pos.angle", Dk, 0, angle, 0};
    t[1] = (retcl__out_tensor){"retnet_rel_pos.decay", c->heads, 0,
                               model->log_decay_host, 0};
    st = write_named(model, op, path, t, 2, dtype, dir);
  }
  free(t);
  free(path);
  free(angle);
  free(host);
  return st;
}

retcl_status retcl_model_load_tensors(retcl_model *model, const char *path,
                                      retcl_buffer values) {
  const char *op = "retcl_model_load_tensors";
  if (!model) return RETCL_ERROR_INVALID_ARGUMENT;
  retcl_context *ctx = model->ctx;
  retcl__clear_error(ctx);
  if (!path)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT, "%s: path is NULL",
                       op);
  const size_t total = model->layout.total;
  retcl_status st = retcl__check_buffer(ctx, op, "values", values, total);
  if (st) return st;
  /* Read every tensor to the host first: a file that lacks one, or holds
   * one of another shape, leaves values untouched. */
  float *host = malloc(total * sizeof *host);
  if (!host)
    return retcl__fail(ctx, RETCL_ERROR_OUT_OF_MEMORY,
                       "%s: host allocation for %zu floats", op, total);
  retcl__safetensors file;
  if ((st = retcl__st_open(ctx, path, &file))) {
    free(host);
    return st;
  }
  for (size_t i = 0; !st && i < model->layout.count; ++i) {
    const retcl__tensor *want = &model->layout.tensors[i];
    const size_t elems = want->cols ? want->rows * want->cols : want->rows;
    const retcl__st_tensor *t = retcl__st_find(&file, want->name);
    if (!t)
      st = retcl__fail(ctx, RETCL_ERROR_FORMAT, "%s: %s has no tensor %s", op,
                       path, want->name);
    else if (t->elems != elems)
      st = retcl__fail(ctx, RETCL_ERROR_FORMAT,
                       "%s: %s: tensor %s has %zu elements, the model's %zu",
                       op, path, want->name, t->elems, elems);
    else
      st = retcl__st_read_f32(ctx, &file, t, host + want->offset);
  }
  retcl__st_close(&file);
  if (!st) {
    const cl_int err = clEnqueueWriteBuffer(
        ctx->queue, values.mem, CL_TRUE, values.offset * sizeof(float),
        total * sizeof(float), host, 0, NULL, NULL);
    if (err != CL_SUCCESS) st = retcl__cl_fail(ctx, "clEnqueueWriteBuffer", err);
  }
  free(host);
  return st;
}
