/* test_save.c - the parameter vector seen from outside: tensor names,
 * shapes and offsets, retcl_model_save's folder loading back to the same
 * model (same logits bit for bit in f32; within the rounding in 16-bit),
 * retcl_model_save_tensors' file read back by retcl_model_load_tensors,
 * and rejected calls. */
#define _DEFAULT_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reference.h"
#include "testutil.h"

static retcl_model_config small_config(int share, int emb_norm) {
  retcl_model_config c;
  retcl_model_config_default(&c);
  c.embed_dim = 16, c.value_embed_dim = 24, c.heads = 2, c.ffn_dim = 20;
  c.layers = 2, c.vocab_size = 37, c.chunk_size = 4;
  c.share_embed = share, c.layernorm_embedding = emb_norm;
  return c;
}

static char *temp_dir(void) {
  static char dir[256];
  snprintf(dir, sizeof dir, "%s/retcl-save-XXXXXX",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  return dir;
}

static void logits_of(retcl_model *m, const int32_t *tok, size_t T,
                      size_t V, float *out) {
  tu_ok(NULL, retcl_model_forward(m, NULL, tok, 1, T, RETCL_ALGO_PARALLEL, 0,
                                  out));
  (void)V;
}

START_TEST(tensors_cover_the_vector_in_order) {
  for (int share = 0; share <= 1; ++share) {
    retcl_context *ctx = tu_context();
    const retcl_model_config c = small_config(share, !share);
    char src[256];
    snprintf(src, sizeof src, "%s", temp_dir());
    tu_ok(ctx, retcl_checkpoint_write_random(&c, 7, RETCL_DTYPE_F32, src));
    retcl_model *m = NULL;
    tu_ok(ctx, retcl_model_load(ctx, src, &m));
    const size_t n = retcl_model_tensor_count(m);
    /* embedding, its norm unless tied here, 10 per layer, final norm,
     * output projection unless tied */
    ck_assert_uint_eq(n, 1 + (size_t)!share + 10 * c.layers + 1 + !share);
    size_t next = 0;
    for (size_t i = 0; i < n; ++i) {
      retcl_tensor_info t;
      tu_ok(ctx, retcl_model_tensor_info(m, i, &t));
      ck_assert_uint_eq(t.offset, next);
      next += t.cols ? t.rows * t.cols : t.rows;
    }
    ck_assert_uint_eq(next, retcl_model_param_count(m));
    retcl_tensor_info first, last;
    tu_ok(ctx, retcl_model_tensor_info(m, 0, &first));
    tu_ok(ctx, retcl_model_tensor_info(m, n - 1, &last));
    ck_assert_str_eq(first.name, "embed_tokens.weight");
    ck_assert_str_eq(last.name, share ? "layer_norm.weight"
                                      : "output_projection.weight");
    tu_assert_status(ctx, retcl_model_tensor_info(m, n, &first),
                     RETCL_ERROR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(retcl_last_error(ctx), "past the model"));
    ck_assert_uint_eq(retcl_model_weight_bytes(m),
                      retcl_model_param_count(m) * sizeof(float));
    retcl_model_destroy(m);
    ref_checkpoint_remove(src);
    retcl_context_destroy(ctx);
  }
}
END_TEST

/* Save, load the saved folder, compare logits: f32 exactly, and the 16-bit
 * types within their rounding (a relative 2^-8 per bf16 weight moves
 * logits of this small model by well under 5%; a wrong tensor order or
 * a missing angle moves them by O(1)). */
START_TEST(saved_folder_loads_back) {
  retcl_context *ctx = tu_context();
  const retcl_model_config c = small_config(0, 1);
  char src[256];
  snprintf(src, sizeof src, "%s", temp_dir());
  tu_ok(ctx, retcl_checkpoint_write_random(&c, 11, RETCL_DTYPE_F32, src));
  retcl_model *m = NULL;
  tu_ok(ctx, retcl_model_load(ctx, src, &m));
  enum { T = 9 };
  int32_t tok[T];
  for (size_t i = 0; i < T; ++i) tok[i] = (int32_t)((i * 7 + 3) % c.vocab_size);
  float *want = tu_alloc(T * c.vocab_size), *got = tu_alloc(T * c.vocab_size);
  logits_of(m, tok, T, c.vocab_size, want);
  const retcl_dtype types[] = {RETCL_DTYPE_F32, RETCL_DTYPE_F16,
                               RETCL_DTYPE_BF16};
  for (size_t k = 0; k < 3; ++k) {
    char dst[256];
    snprintf(dst, sizeof dst, "%s", temp_dir());
    tu_ok(ctx, retcl_model_save(m, dst, types[k]));
    retcl_model *back = NULL;
    tu_ok(ctx, retcl_model_load(ctx, dst, &back));
    for (size_t i = 0; i < T * c.vocab_size; ++i) got[i] = NAN;
    logits_of(back, tok, T, c.vocab_size, got);
    double worst = 0;
    for (size_t i = 0; i < T * c.vocab_size; ++i) {
      const double e = fabs((double)got[i] - want[i]) / (1 + fabs(want[i]));
      ck_assert_msg(isfinite(got[i]), "dtype %zu: logit %zu not finite", k, i);
      if (e > worst) worst = e;
    }
    if (types[k] == RETCL_DTYPE_F32)
      ck_assert_msg(worst == 0, "f32 round trip changed a logit by %g", worst);
    else
      ck_assert_msg(worst < 0.05, "dtype %zu: logits moved by %g", k, worst);
    retcl_model_destroy(back);
    ref_checkpoint_remove(dst);
  }
  free(want), free(got);
  retcl_model_destroy(m);
  ref_checkpoint_remove(src);
  retcl_context_destroy(ctx);
}
END_TEST

START_TEST(save_tensors_file_and_rejections) {
  retcl_context *ctx = tu_context();
  const retcl_model_config c = small_config(1, 0);
  char src[256];
  snprintf(src, sizeof src, "%s", temp_dir());
  tu_ok(ctx, retcl_checkpoint_write_random(&c, 5, RETCL_DTYPE_F32, src));
  retcl_model *m = NULL;
  tu_ok(ctx, retcl_model_load(ctx, src, &m));
  char path[300];
  snprintf(path, sizeof path, "%s/values.safetensors", src);
  const char *names[] = {"loss"};
  const float loss = 2.5f;
  tu_ok(ctx, retcl_model_save_tensors(m, retcl_model_params(m), path, names,
                                      &loss, 1));
  /* 8-byte header length, the header, then every float once. */
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  unsigned char len[8];
  ck_assert_uint_eq(fread(len, 1, 8, f), 8);
  uint64_t header = 0;
  for (int b = 7; b >= 0; --b) header = header << 8 | len[b];
  fclose(f);
  struct stat info;
  ck_assert_int_eq(stat(path, &info), 0);
  ck_assert_uint_eq((uint64_t)info.st_size,
                    8 + header + 4 * (retcl_model_param_count(m) + 1));
  /* Read back into a poisoned buffer: the same floats. */
  const size_t n = retcl_model_param_count(m);
  cl_mem back = tu_poisoned(ctx, n);
  tu_ok(ctx, retcl_model_load_tensors(m, path, retcl_buf(back, 0)));
  float *want = tu_alloc(n), *got = tu_alloc(n);
  tu_download(ctx, retcl_model_params(m).mem, 0, want, n);
  tu_download(ctx, back, 0, got, n);
  ck_assert_int_eq(memcmp(want, got, n * sizeof *got), 0);
  /* A file without the model's tensors fails naming one, untouched. */
  retcl_model_config big = c;
  big.layers = 3;
  char dir3[256];
  snprintf(dir3, sizeof dir3, "%s", temp_dir());
  tu_ok(ctx, retcl_checkpoint_write_random(&big, 5, RETCL_DTYPE_F32, dir3));
  retcl_model *m3 = NULL;
  tu_ok(ctx, retcl_model_load(ctx, dir3, &m3));
  cl_mem big_buf = tu_poisoned(ctx, retcl_model_param_count(m3));
  tu_assert_status(ctx, retcl_model_load_tensors(m3, path, retcl_buf(big_buf, 0)),
                   RETCL_ERROR_FORMAT);
  ck_assert_ptr_nonnull(strstr(retcl_last_error(ctx), "layers.2."));
  tu_download(ctx, big_buf, 0, got, 16);
  for (size_t i = 0; i < 16; ++i) ck_assert(isnan(got[i]));
  clReleaseMemObject(big_buf);
  clReleaseMemObject(back);
  retcl_model_destroy(m3);
  ref_checkpoint_remove(dir3);
  free(want), free(got);
  /* A buffer shorter than the vector, and NULLs, are refused. */
  cl_int err;
  cl_mem small = clCreateBuffer(retcl_context_cl_context(ctx),
                                CL_MEM_READ_WRITE, 64, NULL, &err);
  tu_assert_status(ctx, retcl_model_save_tensors(m, retcl_buf(small, 0),
                                                 path, NULL, NULL, 0),
                   RETCL_ERROR_BUFFER_TOO_SMALL);
  tu_assert_status(ctx, retcl_model_save_tensors(m, retcl_model_params(m),
                                                 NULL, NULL, NULL, 0),
                   RETCL_ERROR_INVALID_ARGUMENT);
  tu_assert_status(ctx, retcl_model_save(m, src, (retcl_dtype)9),
                   RETCL_ERROR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(retcl_last_error(ctx), "dtype 9"));
  clReleaseMemObject(small);
  retcl_model_destroy(m);
  ref_checkpoint_remove(src);
  retcl_context_destroy(ctx);
}
END_TEST

int main(void) {
  Suite *s = suite_create("save");
  TCase *t = tcase_create("save");
  tcase_add_test(t, tensors_cover_the_vector_in_order);
  tcase_add_test(t, saved_folder_loads_back);
  tcase_add_test(t, save_tensors_file_and_rejections);
  suite_add_tcase(s, t);
  return tu_run_suite(s);
}
