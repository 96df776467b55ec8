/* safetensors_write.c - writing named fp32 tensors as a safetensors file
 * (safetensors_write.h), in F32, F16 or BF16, a chunk at a time; and the
 * folder and config.json of a checkpoint. Used by the random checkpoint
 * writer, by retcl_model_save and by `retcl grad`. */
#define _POSIX_C_SOURCE 200809L /* mkdir, stat, strdup under strict C11 */

#include "io/safetensors_write.h"

#include "io/config.h"
#include "io/safetensors.h"
#include "runtime/status.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

/* Elements converted and written per fwrite. */
#define CHUNK_ELEMS 16384

static size_t elems_of(const retcl__out_tensor *t) {
  return t->cols ? t->rows * t->cols : t->rows;
}

static size_t dtype_bytes(retcl_dtype dtype) {
  return dtype == RETCL_DTYPE_F32 ? 4 : 2;
}

/* ---- header ------------------------------------------------------------- */

static cJSON *tensor_entry(const retcl__out_tensor *t, const char *dtype,
                           uint64_t begin, uint64_t end) {
  cJSON *entry = cJSON_CreateObject();
  cJSON *shape = cJSON_AddArrayToObject(entry, "shape");
  cJSON *offsets = cJSON_AddArrayToObject(entry, "data_offsets");
  int ok = entry && shape && offsets &&
           cJSON_AddStringToObject(entry, "dtype", dtype);
  const double dims[2] = {(double)t->rows, (double)t->cols};
  for (size_t i = 0; ok && i < (t->cols ? 2u : 1u); ++i)
    ok = cJSON_AddItemToArray(shape, cJSON_CreateNumber(dims[i]));
  if (ok) ok = cJSON_AddItemToArray(offsets, cJSON_CreateNumber((double)begin));
  if (ok) ok = cJSON_AddItemToArray(offsets, cJSON_CreateNumber((double)end));
  if (!ok) {
    cJSON_Delete(entry);
    return NULL;
  }
  return entry;
}

/* The JSON header, padded with spaces to a multiple of 8 bytes as the
 * reference writer does (keeps the data aligned). */
static retcl_status build_header(const char *op, const retcl__out_tensor *tensors, size_t count, retcl_dtype dtype,
                                 char **text, size_t *len) {
  static const char *const names[] = {"F32", "F16", "BF16"};
  cJSON *root = cJSON_CreateObject();
  cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
  int ok = meta && cJSON_AddStringToObject(meta, "format", "pt");
  uint64_t offset = 0;
  for (size_t i = 0; ok && i < count; ++i) {
    const retcl__out_tensor *t = &tensors[i];
    const uint64_t end = offset + (uint64_t)elems_of(t) * dtype_bytes(dtype);
    cJSON *entry = tensor_entry(t, names[dtype], offset, end);
    ok = entry && cJSON_AddItemToObject(root, t->name, entry);
    if (entry && !ok) cJSON_Delete(entry);
    offset = end;
  }
  char *json = ok ? cJSON_PrintUnformatted(root) : NULL;
  cJSON_Delete(root);
  const size_t n = json ? strlen(json) : 0;
  const size_t padded = (n + 7) / 8 * 8;
  char *out = json ? malloc(padded) : NULL;
  if (out) {
    memcpy(out, json, n);
    memset(out + n, ' ', padded - n);
  }
  cJSON_free(json);
  if (!out)
    return retcl__fail(NULL, RETCL_ERROR_OUT_OF_MEMORY,
                       "%s: host allocation for the safetensors header", op);
  *text = out;
  *len = padded;
  return RETCL_SUCCESS;
}

/* ---- data --------------------------------------------------------------- */

/* Little-endian bytes of one value in dtype. */
static void encode(float x, retcl_dtype dtype, unsigned char *out) {
  uint32_t bits;
  if (dtype == RETCL_DTYPE_F32) {
    memcpy(&bits, &x, sizeof bits);
  } else {
    bits = dtype == RETCL_DTYPE_F16 ? retcl__f32_to_f16(x)
                                    : retcl__f32_to_bf16(x);
  }
  for (size_t b = 0; b < dtype_bytes(dtype); ++b)
    out[b] = (unsigned char)(bits >> (8 * b));
}

static retcl_status write_data(FILE *f, const char *op, const char *path,
                               const retcl__out_tensor *tensors, size_t count,
                               retcl_dtype dtype, retcl__fill_fn fill,
                               void *user) {
  const size_t esize = dtype_bytes(dtype);
  unsigned char *buf = malloc(CHUNK_ELEMS * 4);
  if (!buf)
    return retcl__fail(NULL, RETCL_ERROR_OUT_OF_MEMORY,
                       "%s: host allocation", op);
  retcl_status s = RETCL_SUCCESS;
  for (size_t i = 0; i < count && !s; ++i) {
    const retcl__out_tensor *t = &tensors[i];
    const size_t n = elems_of(t);
    for (size_t done = 0; done < n && !s;) {
      const size_t m = n - done < CHUNK_ELEMS ? n - done : CHUNK_ELEMS;
      for (size_t k = 0; k < m; ++k)
        encode(t->data ? t->data[done + k] : fill(t, done + k, user), dtype,
               buf + k * esize);
      if (fwrite(buf, esize, m, f) != m)
        s = retcl__fail(NULL, RETCL_ERROR_IO, "%s: write failed: %s", path,
                        strerror(errno));
      done += m;
    }
  }
  free(buf);
  return s;
}

retcl_status retcl__safetensors_write(const char *op, const char *path,
                                      const retcl__out_tensor *tensors,
                                      size_t count, retcl_dtype dtype,
                                      retcl__fill_fn fill, void *user) {
  char *header = NULL;
  size_t header_len = 0;
  retcl_status s = build_header(op, tensors, count, dtype, &header,
                                &header_len);
  FILE *f = NULL;
  if (!s && !(f = fopen(path, "wb")))
    s = retcl__fail(NULL, RETCL_ERROR_IO, "cannot create %s: %s", path,
                    strerror(errno));
  if (!s) {
    unsigned char len_bytes[8];
    for (int b = 0; b < 8; ++b)
      len_bytes[b] = (unsigned char)((uint64_t)header_len >> (8 * b));
    if (fwrite(len_bytes, 1, 8, f) != 8 ||
        fwrite(header, 1, header_len, f) != header_len)
      s = retcl__fail(NULL, RETCL_ERROR_IO, "%s: write failed: %s", path,
                      strerror(errno));
  }
  if (!s) s = write_data(f, op, path, tensors, count, dtype, fill, user);
  if (f && fclose(f) != 0 && !s)
    s = retcl__fail(NULL, RETCL_ERROR_IO, "%s: write failed: %s", path,
                    strerror(errno));
  if (s && f) remove(path); /* never leave half a file behind */
  free(header);
  return s;
}

/* ---- folders ------------------------------------------------------------ */

/* mkdir -p: every missing component of dir. */
retcl_status retcl__make_dirs(const char *dir) {
  char *p = strdup(dir);
  if (!p)
    return retcl__fail(NULL, RETCL_ERROR_OUT_OF_MEMORY,
                       "%s: host allocation", dir);
  for (char *s = p + 1; *s; ++s) {
    if (*s != '/') continue;
    *s = '\0';
    mkdir(p, 0777); /* failures show up at the last component */
    *s = '/';
  }
  int err = mkdir(p, 0777) == 0 ? 0 : errno;
  free(p);
  struct stat info;
  if (err && err != EEXIST)
    return retcl__fail(NULL, RETCL_ERROR_IO, "cannot create folder %s: %s",
                       dir, strerror(err));
  if (stat(dir, &info) != 0 || !S_ISDIR(info.st_mode))
    return retcl__fail(NULL, RETCL_ERROR_IO, "%s exists and is not a folder",
                       dir);
  return RETCL_SUCCESS;
}

char *retcl__join_path(const char *dir, const char *file) {
  const size_t n = strlen(dir) + 1 + strlen(file) + 1;
  char *p = malloc(n);
  if (p) snprintf(p, n, "%s/%s", dir, file);
  return p;
}

/* Write bytes to path, removing a partial file on failure. */
static retcl_status write_file(const char *path, const void *bytes,
                               size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f)
    return retcl__fail(NULL, RETCL_ERROR_IO, "cannot create %s: %s", path,
                       strerror(errno));
  int ok = fwrite(bytes, 1, len, f) == len;
  ok = (fclose(f) == 0) && ok;
  if (ok) return RETCL_SUCCESS;
  remove(path);
  return retcl__fail(NULL, RETCL_ERROR_IO, "%s: write failed", path);
}

retcl_status retcl__write_config(const char *op,
                                 const retcl_model_config *cfg,
                                 const char *dir) {
  char *path = retcl__join_path(dir, "config.json");
  char *text = retcl__config_to_json(cfg);
  retcl_status s = (path && text)
                       ? write_file(path, text, strlen(text))
                       : retcl__fail(NULL, RETCL_ERROR_OUT_OF_MEMORY,
                                     "%s: host allocation for config.json", op);
  free(text);
  free(path);
  return s;
}

