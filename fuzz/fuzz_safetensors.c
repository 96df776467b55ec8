/* fuzz_safetensors.c - libFuzzer harness for the safetensors reader
 * (lib/io/safetensors.c): the input is a whole file, opened from memory with
 * fmemopen. Beyond "no crash, no leak, no UB" it checks what the reader
 * promises: every entry it accepts lies inside the file, has a consistent
 * shape, is found again by name, and (for F32/F16/BF16) reads back the
 * stored values. */
#define _POSIX_C_SOURCE 200809L /* fmemopen */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"

/* A broken promise of the reader: abort so libFuzzer keeps the input. */
#define REQUIRE(cond)                                                      \
  do {                                                                     \
    if (!(cond)) {                                                         \
      fprintf(stderr, "fuzz_safetensors: %s:%d: %s\n", __FILE__, __LINE__, \
              #cond);                                                      \
      abort();                                                             \
    }                                                                      \
  } while (0)

static size_t element_size(retcl__st_dtype dt) {
  return dt == RETCL__ST_F32 ? 4 : (dt == RETCL__ST_UNKNOWN ? 0 : 2);
}

/* The floats read are the stored values: F32 bit for bit, F16/BF16
 * widened exactly, and narrowing them again gives the stored bits back
 * (any nan staying a nan). */
static void check_values(const uint8_t *raw, retcl__st_dtype dtype,
                         const float *got, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (dtype == RETCL__ST_F32) {
      REQUIRE(memcmp(&got[i], raw + 4 * i, 4) == 0);
      continue;
    }
    const uint16_t bits = (uint16_t)(raw[2 * i] | raw[2 * i + 1] << 8);
    const int f16 = dtype == RETCL__ST_F16;
    const float want = f16 ? retcl__f16_to_f32(bits) : retcl__bf16_to_f32(bits);
    REQUIRE(memcmp(&got[i], &want, sizeof want) == 0);
    const uint16_t back = f16 ? retcl__f32_to_f16(want)
                              : retcl__f32_to_bf16(want);
    if (want != want) /* nan */
      REQUIRE(f16 ? (back & 0x7c00u) == 0x7c00u && (back & 0x3ffu)
                  : (back & 0x7f80u) == 0x7f80u && (back & 0x7fu));
    else
      REQUIRE(back == bits);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0; /* fmemopen refuses empty buffers on some libcs */
  FILE *file = fmemopen((void *)data, size, "rb");
  if (!file) return 0;
  retcl__safetensors st;
  retcl_status s = retcl__st_open_stream(NULL, file, "fuzz.safetensors", &st);
  if (s != RETCL_SUCCESS) {
    REQUIRE(s == RETCL_ERROR_FORMAT || s == RETCL_ERROR_IO);
    REQUIRE(retcl_last_error(NULL)[0] != '\0');
    /* A failed open leaves st closed: nothing to free. */
    REQUIRE(st.file == NULL && st.tensors == NULL && st.path == NULL);
    return 0;
  }
  REQUIRE(st.file_size == size);
  for (size_t i = 0; i < st.count; ++i) {
    const retcl__st_tensor *t = &st.tensors[i];
    REQUIRE(t->name != NULL);
    REQUIRE(i == 0 || strcmp(st.tensors[i - 1].name, t->name) < 0);
    REQUIRE(retcl__st_find(&st, t->name) == t);
    REQUIRE(t->rank <= RETCL__ST_MAX_RANK);
    size_t elems = 1;
    for (size_t k = 0; k < t->rank; ++k) elems *= t->shape[k];
    REQUIRE(elems == t->elems);
    REQUIRE(t->offset >= 8 && t->offset <= size && t->bytes <= size - t->offset);
    const size_t esize = element_size(t->dtype);
    float *dst = NULL;
    if (esize) {
      REQUIRE(t->elems * esize == t->bytes);
      dst = malloc(t->elems ? t->elems * sizeof(float) : 1);
      if (!dst) continue;
    }
    s = retcl__st_read_f32(NULL, &st, t, dst);
    /* Known dtypes lie inside the buffer, so they must read; unknown ones
     * must be refused by name rather than touch dst. */
    REQUIRE(esize ? s == RETCL_SUCCESS : s == RETCL_ERROR_FORMAT);
    if (esize) check_values(data + t->offset, t->dtype, dst, t->elems);
    free(dst);
  }
  REQUIRE(retcl__st_find(&st, "") == NULL || st.count > 0);
  retcl__st_close(&st);
  return 0;
}
