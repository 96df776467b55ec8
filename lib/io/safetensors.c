/* safetensors.c - reading safetensors files (an 8-byte little-endian header
 * length N, N bytes of JSON, then the data) without trusting any number in
 * them, and the fp16/bf16 conversions. */
#define _POSIX_C_SOURCE 200809L /* fseeko, ftello, strdup under strict C11 */
#define _FILE_OFFSET_BITS 64    /* files past 2 GiB on 32-bit hosts */

#include "io/safetensors.h"

#include "runtime/status.h"
#include "runtime/validate.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* The reference implementation refuses headers over 100 MB; so do we, so a
 * lying length cannot make us allocate the whole file for JSON. */
#define MAX_HEADER_BYTES (100u * 1024u * 1024u)
/* Integers above 2^53 do not survive cJSON's doubles exactly. */
#define MAX_EXACT_INTEGER 9007199254740992.0
/* fp16/bf16 tensors are read through a staging buffer of this many bytes. */
#define STAGING_BYTES 65536
static const char DECODER_PREFIX[] = "decoder.";

/* ---- fp16 / bf16 -------------------------------------------------------- */

static float bits_to_float(uint32_t bits) {
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

static uint32_t float_to_bits(float f) {
  uint32_t bits;
  memcpy(&bits, &f, sizeof bits);
  return bits;
}

float retcl__f16_to_f32(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0) {
    /* Zero or subnormal: mantissa · 2^-24, exact in fp32 (a normal there). */
    float magnitude = (float)mantissa * 0x1p-24f;
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 31) /* inf, or nan keeping its payload */
    return bits_to_float(sign | 0x7f800000u | (mantissa << 13));
  /* Rebias the exponent from 15 to 127. */
  return bits_to_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

float retcl__bf16_to_f32(uint16_t b) {
  return bits_to_float((uint32_t)b << 16); /* bf16 is fp32's top half */
}

/* Round q (a value already shifted right by `shift` bits, with the dropped
 * bits in rem) to nearest, ties to even. */
static uint32_t round_nearest_even(uint32_t q, uint32_t rem, uint32_t shift) {
  const uint32_t half = 1u << (shift - 1);
  if (rem > half || (rem == half && (q & 1u))) ++q;
  return q;
}

uint16_t retcl__f32_to_f16(float f) {
  const uint32_t x = float_to_bits(f);
  const uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
  const uint32_t mag = x & 0x7fffffffu;
  if (mag > 0x7f800000u) /* nan: stay a (quiet) nan */
    return (uint16_t)(sign | 0x7e00u | ((mag >> 13) & 0x3ffu));
  if (mag >= 0x477ff000u) /* ≥ 65520 rounds past 65504: inf */
    return (uint16_t)(sign | 0x7c00u);
  if (mag < 0x38800000u) { /* below 2^-14: an fp16 subnormal or zero */
    if (mag < 0x33000000u) return sign; /* under 2^-25: rounds to zero */
    /* value = m · 2^(e-150); in units of 2^-24 that is m >> (126 - e). */
    const uint32_t e = mag >> 23;
    const uint32_t m = (mag & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126u - e; /* 14 .. 24 */
    const uint32_t q = round_nearest_even(m >> shift, m & ((1u << shift) - 1u),
                                          shift);
    return (uint16_t)(sign | q); /* q = 0x400 is the smallest normal */
  }
  /* Normal: rebias 127 → 15 and drop 13 mantissa bits; a carry into the
   * exponent is the correct result. */
  const uint32_t r = mag - 0x38000000u;
  return (uint16_t)(sign | round_nearest_even(r >> 13, r & 0x1fffu, 13));
}

uint16_t retcl__f32_to_bf16(float f) {
  const uint32_t x = float_to_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) /* nan: keep it a nan */
    return (uint16_t)((x >> 16) | 0x40u);
  return (uint16_t)(round_nearest_even(x >> 16, x & 0xffffu, 16));
}

/* ---- header parsing ----------------------------------------------------- */

static int host_is_little_endian(void) {
  const uint16_t one = 1;
  uint8_t first;
  memcpy(&first, &one, 1);
  return first == 1;
}

static uint64_t load_le64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

/* A JSON number that is an exact non-negative integer. */
static int json_uint(const cJSON *v, uint64_t *out) {
  if (!cJSON_IsNumber(v)) return 0;
  const double d = v->valuedouble;
  if (!(d >= 0.0) || d > MAX_EXACT_INTEGER || d != floor(d)) return 0;
  *out = (uint64_t)d;
  return 1;
}

static size_t dtype_size(retcl__st_dtype dt) {
  switch (dt) {
    case RETCL__ST_F32: return 4;
    case RETCL__ST_F16:
    case RETCL__ST_BF16: return 2;
    default: return 0;
  }
}

static retcl_status parse_dtype(retcl_context *ctx, const char *path,
                                const char *name, const cJSON *v,
                                retcl__st_tensor *t) {
  if (!cJSON_IsString(v))
    return retcl__fail(ctx, RETCL_ERROR_FORMAT,
                       "%s: tensor '%s': \"dtype\" is missing or not a string",
                       path, name);
  const char *s = v->valuestring;
  if (strcmp(s, "F32") == 0) t->dtype = RETCL__ST_F32;
  else if (strcmp(s, "F16") == 0) t->dtype = RETCL__ST_F16;
  else if (strcmp(s, "BF16") == 0) t->dtype = RETCL__ST_BF16;
  else t->dtype = RETCL__ST_UNKNOWN; /* an error only if the tensor is used */
  snprintf(t->dtype_name, sizeof t->dtype_name, "%s", s);
  return RETCL_SUCCESS;
}

static retcl_status parse_shape(retcl_context *ctx, const char *path,
                                const char *name, const cJSON *v,
                                retcl__st_tensor *t) {
  if (!cJSON_IsArray(v))
    return retcl__fail(ctx, RETCL_ERROR_FORMAT,
                       "%s: tensor '%s': \"shape\" is missing or not an array",
                       path, name);
  const int rank = cJSON_GetArraySize(v);
  if (rank > RETCL__ST_MAX_RANK)
    return retcl__fail(ctx, RETCL_ERROR_FORMAT,
                       "%s: tensor '%s' has rank %d (at most %d supported)",
                       path, name, rank, RETCL__ST_MAX_RANK);
  t->rank = (size_t)rank;
  t->elems = 1;
  size_t i = 0;
  const cJSON *dim;
  cJSON_ArrayForEach(dim, v) {
    uint64_t n;
    if (!json_uint(dim, &n) || n > SIZE_MAX)
      return retcl__fail(ctx, RETCL_ERROR_FORMAT,
                         "%s: tensor '%s': shape[%zu] is not a non-negative "
                         "integer",
                         path, name, i);
    t->shape[i++] = (size_t)n;
    t->elems = retcl__mul(t->elems, (size_t)n);
    if (t->elems == SIZE_MAX)
      return retcl__fail(ctx, RETCL_ERROR_FORMAT,
                         "%s: tensor '%s': element count overflows", path,
                         name);
  }
  return RETCL_SUCCESS;
}

/* data_offsets [begin, end] relative to the data section of data_len
 * bytes, which starts at file offset data_start. */
static retcl_status parse_offsets(retcl_context *ctx, const char *path,
                                  const char *name, const cJSON *v,
                                  uint64_t data_start, uint64_t data_len,
                                  retcl__st_tensor *t) {
  uint64_t begin, end;
  if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2 ||
      !json_uint(cJSON_GetArrayItem(v, 0), &begin) ||
      !json_uint(cJSON_GetArrayItem(v, 1), &end))
    return retcl__fail(ctx, RETCL_ERROR_FORMAT,
                       "%s: tensor '%s': \"data_offsets\" must be two "
                       "non-negative integers",
                       path, name);
  if (begin > end || end > data_len)
    return retcl__fail(ctx, RETCL_ERROR_FORMAT,
                       "%s: tensor '%s': data_offsets [%llu, %llu] lie "
                       "outside the %llu bytes of data (truncated file?)",
                       path, name, (unsigned long long)begin,
                       (unsigned long long)end, (unsigned long long)data_len);
  t->offset = data_start + begin;
  t->bytes = end - begin;
  return RETCL_SUCCESS;
}

/* One header entry into t: dtype, shape, offsets, and whether the byte
 * count matches the shape. */
static retcl_status parse_entry(retcl_context *ctx, const char *path,
                                const cJSON *entry, uint64_t data_start,
                                uint64_t data_len, retcl__st_tensor *t) {
  const char *name = entry->string;
  if (!cJSON_IsObject(entry))
    return retcl__fail(ctx, RETCL_ERROR_FORMAT,
                       "%s: tensor '%s': entry is not a JSON object", path,
                       name);
  retcl_status st = parse_dtype(ctx, path, name,
                                cJSON_GetObjectItemCaseSensitive(entry, "dtype"),
                                t);
  if (st == RETCL_SUCCESS)
    st = parse_shape(ctx, path, name,
                     cJSON_GetObjectItemCaseSensitive(entry, "shape"), t);
  if (st == RETCL_SUCCESS)
    st = parse_offsets(ctx, path, name,
                       cJSON_GetObjectItemCaseSensitive(entry, "data_offsets"),
                       data_start, data_len, t);
  if (st != RETCL_SUCCESS) return st;
  const size_t esize = dtype_size(t->dtype);
  if (esize) {
    const size_t want = retcl__mul(t->elems, esize);
    if (want == SIZE_MAX || (uint64_t)want != t->bytes)
      return retcl__fail(ctx, RETCL_ERROR_FORMAT,
                         "%s: tensor '%s': %llu bytes of data do not match "
                         "its shape (%zu elements) and dtype %s",
                         path, name, (unsigned long long)t->bytes, t->elems,
                         t->dtype_name);
  }
  const size_t skip = strncmp(name, DECODER_PREFIX, sizeof DECODER_PREFIX - 1)
                          ? 0 : sizeof DECODER_PREFIX - 1;
  t->name = strdup(name + skip);
  if (!t->name)
    return retcl__fail(ctx, RETCL_ERROR_OUT_OF_MEMORY,
                       "%s: host allocation for a tensor name", path);
  return RETCL_SUCCESS;
}

static int compare_tensors(const void *a, const void *b) {
  return strcmp(((const retcl__st_tensor *)a)->name,
                ((const retcl__st_tensor *)b)->name);
}

/* All entries of the header object except __metadata__, sorted by name;
 * two names equal after prefix stripping are ambiguous. */
static retcl_status parse_entries(retcl_context *ctx, retcl__safetensors *st,
                                  const cJSON *root, uint64_t data_start,
                                  uint64_t data_len) {
  size_t n = 0;
  const cJSON *entry;
  cJSON_ArrayForEach(entry, root)
    if (strcmp(entry->string, "__metadata__") != 0) ++n;
  st->tensors = calloc(n ? n : 1, sizeof *st->tensors);
  if (!st->tensors)
    return retcl__fail(ctx, RETCL_ERROR_OUT_OF_MEMORY,
                       "%s: host allocation for %zu tensor entries", st->path,
                       n);
  cJSON_ArrayForEach(entry, root) {
    if (strcmp(entry->string, "__metadata__") == 0) continue;
    /* count grows with each parsed entry so close() frees exactly those. */
    retcl_status s = parse_entry(ctx, st->path, entry, data_start, data_len,
                                 &st->tensors[st->count]);
    if (st->tensors[st->count].name) ++st->count;
    if (s != RETCL_SUCCESS) return s;
  }
  qsort(st->tensors, st->count, sizeof *st->tensors, compare_tensors);
  for (size_t i = 1; i < st->count; ++i)
    if (strcmp(st->tensors[i - 1].name, st->tensors[i].name) == 0)
      return retcl__fail(ctx, RETCL_ERROR_FORMAT,
                         "%s: tensor '%s' appears twice (with and without "
                         "the \"decoder.\" prefix?)",
                         st->path, st->tensors[i].name);
  return RETCL_SUCCESS;
}

static retcl_status file_size(retcl_context *ctx, retcl__safetensors *st) {
  if (fseeko(st->file, 0, SEEK_END) != 0)
    return retcl__fail(ctx, RETCL_ERROR_IO, "%s: cannot seek: %s", st->path,
                       strerror(errno));
  const off_t size = ftello(st->file);
  if (size < 0 || fseeko(st->file, 0, SEEK_SET) != 0)
    return retcl__fail(ctx, RETCL_ERROR_IO, "%s: cannot seek: %s", st->path,
                       strerror(errno));
  st->file_size = (uint64_t)size;
  return RETCL_SUCCESS;
}

/* The JSON header's text, NUL-terminated, after checking its length. */
static retcl_status read_header_text(retcl_context *ctx,
                                     retcl__safetensors *st, char **text,
                                     uint64_t *header_len) {
  unsigned char len_bytes[8];
  if (st->file_size < 8 || fread(len_bytes, 1, 8, st->file) != 8)
    return retcl__fail(ctx, RETCL_ERROR_FORMAT,
                       "%s: %llu bytes is too short for a safetensors file",
                       st->path, (unsigned long long)st->file_size);
  const uint64_t n = load_le64(len_bytes);
  if (n > st->file_size - 8)
    return retcl__fail(ctx, RETCL_ERROR_FORMAT,
                       "%s: header length %llu exceeds the %llu bytes after "
                       "it (truncated or not a safetensors file)",
                       st->path, (unsigned long long)n,
                       (unsigned long long)(st->file_size - 8));
  if (n > MAX_HEADER_BYTES)
    return retcl__fail(ctx, RETCL_ERROR_FORMAT,
                       "%s: header length %llu exceeds the 100 MB limit",
                       st->path, (unsigned long long)n);
  char *buf = malloc((size_t)n + 1);
  if (!buf)
    return retcl__fail(ctx, RETCL_ERROR_OUT_OF_MEMORY,
                       "%s: host allocation for a %llu-byte header", st->path,
                       (unsigned long long)n);
  if (fread(buf, 1, (size_t)n, st->file) != (size_t)n) {
    free(buf);
    return retcl__fail(ctx, RETCL_ERROR_IO, "%s: cannot read the header",
                       st->path);
  }
  buf[n] = '\0';
  /* cJSON would stop at an embedded NUL and ignore what follows. */
  if (memchr(buf, '\0', (size_t)n)) {
    free(buf);
    return retcl__fail(ctx, RETCL_ERROR_FORMAT,
                       "%s: header holds a NUL byte (not JSON)", st->path);
  }
  *text = buf;
  *header_len = n;
  return RETCL_SUCCESS;
}

/* Parse the whole of text (trailing spaces are the format's padding). */
static retcl_status parse_header_json(retcl_context *ctx, const char *path,
                                      const char *text, size_t len,
                                      cJSON **root) {
  const char *end = NULL;
  cJSON *json = cJSON_ParseWithLengthOpts(text, len, &end, 0);
  if (!json) {
    const char *at = cJSON_GetErrorPtr();
    size_t pos = (at && at >= text && at <= text + len) ? (size_t)(at - text)
                                                        : 0;
    return retcl__fail(ctx, RETCL_ERROR_FORMAT,
                       "%s: header is not valid JSON (near byte %zu)", path,
                       pos);
  }
  for (const char *p = end; p && p < text + len; ++p)
    if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
      cJSON_Delete(json);
      return retcl__fail(ctx, RETCL_ERROR_FORMAT,
                         "%s: header has data after its JSON object", path);
    }
  if (!cJSON_IsObject(json)) {
    cJSON_Delete(json);
    return retcl__fail(ctx, RETCL_ERROR_FORMAT,
                       "%s: header is not a JSON object", path);
  }
  *root = json;
  return RETCL_SUCCESS;
}

retcl_status retcl__st_open(retcl_context *ctx, const char *path,
                            retcl__safetensors *st) {
  memset(st, 0, sizeof *st);
  FILE *file = fopen(path, "rb");
  if (!file)
    return retcl__fail(ctx, RETCL_ERROR_IO, "cannot open %s: %s", path,
                       strerror(errno));
  return retcl__st_open_stream(ctx, file, path, st);
}

retcl_status retcl__st_open_stream(retcl_context *ctx, FILE *file,
                                   const char *path, retcl__safetensors *st) {
  memset(st, 0, sizeof *st);
  st->file = file;
  st->path = strdup(path);
  if (!st->path) {
    retcl__st_close(st);
    return retcl__fail(ctx, RETCL_ERROR_OUT_OF_MEMORY,
                       "host allocation for a path");
  }
  char *text = NULL;
  cJSON *root = NULL;
  uint64_t header_len = 0;
  retcl_status s = file_size(ctx, st);
  if (s == RETCL_SUCCESS) s = read_header_text(ctx, st, &text, &header_len);
  if (s == RETCL_SUCCESS)
    s = parse_header_json(ctx, path, text, (size_t)header_len, &root);
  if (s == RETCL_SUCCESS)
    s = parse_entries(ctx, st, root, 8 + header_len,
                      st->file_size - 8 - header_len);
  cJSON_Delete(root);
  free(text);
  if (s != RETCL_SUCCESS) retcl__st_close(st);
  return s;
}

void retcl__st_close(retcl__safetensors *st) {
  if (!st) return;
  if (st->file) fclose(st->file);
  for (size_t i = 0; i < st->count; ++i) free(st->tensors[i].name);
  free(st->tensors);
  free(st->path);
  memset(st, 0, sizeof *st);
}

const retcl__st_tensor *retcl__st_find(const retcl__safetensors *st,
                                       const char *name) {
  retcl__st_tensor key;
  memset(&key, 0, sizeof key);
  key.name = (char *)name;
  if (!st->count) return NULL;
  return bsearch(&key, st->tensors, st->count, sizeof *st->tensors,
                 compare_tensors);
}

/* ---- tensor data -------------------------------------------------------- */

static void swap_f32_bytes(float *x, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    uint32_t v = float_to_bits(x[i]);
    v = (v >> 24) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) | (v << 24);
    x[i] = bits_to_float(v);
  }
}

static retcl_status read_fail(retcl_context *ctx,
                              const retcl__safetensors *st,
                              const retcl__st_tensor *t) {
  if (ferror(st->file))
    return retcl__fail(ctx, RETCL_ERROR_IO, "%s: reading tensor '%s': %s",
                       st->path, t->name, strerror(errno));
  return retcl__fail(ctx, RETCL_ERROR_IO,
                     "%s: the file ended while reading tensor '%s' (changed "
                     "since it was opened?)",
                     st->path, t->name);
}

/* n fp16 or bf16 values from the file's position, converted a staging
 * buffer at a time. */
static retcl_status read_half(retcl_context *ctx, const retcl__safetensors *st,
                              const retcl__st_tensor *t, size_t n,
                              float *dst) {
  unsigned char *stage = malloc(STAGING_BYTES);
  if (!stage)
    return retcl__fail(ctx, RETCL_ERROR_OUT_OF_MEMORY,
                       "host allocation for a read buffer");
  float (*widen)(uint16_t) =
      t->dtype == RETCL__ST_F16 ? retcl__f16_to_f32 : retcl__bf16_to_f32;
  size_t done = 0;
  while (done < n) {
    size_t k = n - done;
    if (k > STAGING_BYTES / 2) k = STAGING_BYTES / 2;
    if (fread(stage, 2, k, st->file) != k) {
      free(stage);
      return read_fail(ctx, st, t);
    }
    for (size_t i = 0; i < k; ++i)
      dst[done + i] =
          widen((uint16_t)(stage[2 * i] | (unsigned)stage[2 * i + 1] << 8));
    done += k;
  }
  free(stage);
  return RETCL_SUCCESS;
}

/* n elements of t from element `first` into dst as fp32. */
static retcl_status read_run(retcl_context *ctx, const retcl__safetensors *st,
                             const retcl__st_tensor *t, size_t first, size_t n,
                             float *dst) {
  if (n == 0) return RETCL_SUCCESS;
  const size_t esize = dtype_size(t->dtype);
  if (fseeko(st->file, (off_t)(t->offset + first * esize), SEEK_SET) != 0)
    return retcl__fail(ctx, RETCL_ERROR_IO, "%s: seeking to tensor '%s': %s",
                       st->path, t->name, strerror(errno));
  if (t->dtype != RETCL__ST_F32) return read_half(ctx, st, t, n, dst);
  /* fp32: straight into dst, then fix the byte order on big-endian hosts. */
  if (fread(dst, sizeof(float), n, st->file) != n) return read_fail(ctx, st, t);
  if (!host_is_little_endian()) swap_f32_bytes(dst, n);
  return RETCL_SUCCESS;
}

static retcl_status check_dtype(retcl_context *ctx,
                                const retcl__safetensors *st,
                                const retcl__st_tensor *t) {
  if (t->dtype != RETCL__ST_UNKNOWN) return RETCL_SUCCESS;
  return retcl__fail(ctx, RETCL_ERROR_FORMAT,
                     "%s: tensor '%s' has dtype %s; only F32, F16 and BF16 "
                     "load",
                     st->path, t->name, t->dtype_name);
}

retcl_status retcl__st_read_f32(retcl_context *ctx,
                                const retcl__safetensors *st,
                                const retcl__st_tensor *t, float *dst) {
  retcl_status s = check_dtype(ctx, st, t);
  if (s) return s;
  return read_run(ctx, st, t, 0, t->elems, dst);
}

retcl_status retcl__st_read_window(retcl_context *ctx,
                                   const retcl__safetensors *st,
                                   const retcl__st_tensor *t, size_t cols,
                                   size_t row0, size_t rows, size_t col0,
                                   size_t ncols, float *dst) {
  retcl_status s = check_dtype(ctx, st, t);
  if (s) return s;
  /* Whole rows lie back to back: one read. */
  if (col0 == 0 && ncols == cols)
    return read_run(ctx, st, t, row0 * cols, rows * cols, dst);
  for (size_t r = 0; r < rows && !s; ++r)
    s = read_run(ctx, st, t, (row0 + r) * cols + col0, ncols,
                 dst + r * ncols);
  return s;
}
