/* test_model_grad.c - the model's training pass: the loss of
 * retcl_model_forward_train against the double reference model's
 * cross-entropy; retcl_model_backward's gradient, every element, against
 * the analytic double gradient (reference/ref_model_grad.c), and that
 * gradient against central differences of the double loss, for every kind
 * of tensor, in each retention form, with and without recomputation; tied
 * embeddings; bitwise reproducible gradients; rejected calls. */
#define _DEFAULT_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reference.h"
#include "testutil.h"

/* Two comparisons, each with its own bound:
 *  - the device's fp32 gradient against the analytic double gradient of
 *    the same loss (reference/ref_model_grad.c), every element of every
 *    tensor: norm-wise per tensor, and element-wise relative to (|exact| +
 *    the tensor's largest |exact|), the floor standing for the fp32 sums'
 *    error on elements whose terms cancel. Measured over 330 fresh seeds
 *    (eps 1e-6; 200 in the CPU pattern, 130 in the GPU one), worst
 *    norm-wise: parallel 1.0e-4, chunkwise 2.4e-4, recurrent 8.1e-4
 *    (element-wise below those); the median draw is near 2e-6. The tails
 *    are draws where a query is nearly orthogonal to the keys it sees
 *    (with Dk = 8 the cosine of two random vectors has a standard
 *    deviation of 0.35): the row's scores cancel, and the group norm after
 *    retention rescales the small row, rounding included, to unit size.
 *    The forms that read q·S (the recurrent one for every earlier token,
 *    the chunkwise one for earlier chunks) have heavier tails: they round
 *    each column of q·S apart, where a score per key keeps the row in the
 *    span of the values (docs/training.md). The bounds leave a factor of
 *    about 10 over those worsts;
 *  - that analytic gradient against central differences of the double
 *    loss (ref_model_forward), a few elements per tensor, within FD_TOL
 *    (measured: 1.4e-7 at worst over 600 checks). Steps of 1e-5 of the
 *    weight (at least 1e-6), extrapolated from h and h/2 (Richardson);
 *    where the two steps disagree by more than 1e-4 the loss is not smooth
 *    on the scale of h there (a torchscale normaliser's clamp switching
 *    inside the step) and the element is drawn again. torchscale's
 *    retention normalisers are constants for its gradient (detached) while
 *    the differences see them move; the per-head group norm cancels them
 *    except through its eps, so this comparison runs on the same weights
 *    with eps 1e-12, where the two derivatives agree far below FD_TOL
 *    (with 1e-6: up to 1.1e-3 where a head's outputs are as small as
 *    sqrt(eps)). The device runs the config's eps, torchscale's 1e-6: with
 *    1e-12 nothing caps the group norm's rescaling of a near-zero row
 *    (seen: 3.7e-4 norm-wise in the parallel form).
 * A missing term, a wrong scale or a transposed weight gives O(1) in
 * either. */
#define GRAD_TOL_PARALLEL 1e-3
#define GRAD_TOL_CHUNKWISE 5e-3
#define GRAD_TOL_RECURRENT 1e-2
#define FD_STEP 1e-5f
#define FD_TOL 1e-6
#define FD_EPS 1e-12f

static retcl_model_config tiny(int share, int emb_norm, int deepnorm) {
  retcl_model_config c;
  retcl_model_config_default(&c);
  c.embed_dim = 16, c.value_embed_dim = 24, c.heads = 2, c.ffn_dim = 20;
  c.layers = 2, c.vocab_size = 23, c.chunk_size = 4;
  c.share_embed = share, c.layernorm_embedding = emb_norm;
  c.deepnorm = deepnorm;
  c.activation = RETCL_ACT_SWISH;
  return c;
}

/* Mean next-token cross-entropy of the double reference model. */
static double ref_loss(const ref_model *m, const int32_t *tok, size_t B,
                       size_t T, retcl_algorithm algo) {
  const size_t V = m->cfg.vocab_size;
  double *logits = malloc(B * T * V * sizeof *logits);
  ref_model_forward(m, tok, B, T, algo, 0, logits);
  double sum = 0;
  for (size_t b = 0; b < B; ++b)
    for (size_t t = 0; t + 1 < T; ++t) {
      const double *row = logits + (b * T + t) * V;
      double mx = row[0], z = 0;
      for (size_t v = 1; v < V; ++v) mx = row[v] > mx ? row[v] : mx;
      for (size_t v = 0; v < V; ++v) z += exp(row[v] - mx);
      sum += mx + log(z) - row[tok[b * T + t + 1]];
    }
  free(logits);
  return sum / (double)(B * (T - 1));
}

/* (L(w + h) - L(w - h)) / (the two floats' distance) of the double loss,
 * *w restored after. */
static double central_difference(const ref_model *m, float *w, float h,
                                 const int32_t *tok, size_t B, size_t T,
                                 retcl_algorithm algo) {
  const float w0 = *w;
  *w = w0 + h;
  const double up = ref_loss(m, tok, B, T, algo), wp = *w;
  *w = w0 - h;
  const double down = ref_loss(m, tok, B, T, algo), wm = *w;
  *w = w0;
  return (up - down) / (wp - wm);
}

/* A checkpoint tensor's slot: the four model-wide ones, then a layer's ten
 * (with *layer set); -1 for a name the reference does not have. */
enum { SLOT_EMBED, SLOT_EMB_NORM, SLOT_FINAL_NORM, SLOT_OUT_PROJ, SLOT_LAYER };
static int tensor_slot(const char *name, unsigned *layer) {
  static const char *const model_names[] = {
      "embed_tokens.weight", "layernorm_embedding.weight", "layer_norm.weight",
      "output_projection.weight"};
  static const char *const layer_names[] = {
      "retention.q_proj.weight", "retention.k_proj.weight",
      "retention.v_proj.weight", "retention.g_proj.weight",
      "retention.out_proj.weight", "retention_layer_norm.weight",
      "ffn.fc1.weight", "ffn.gate.weight", "ffn.fc2.weight",
      "final_layer_norm.weight"};
  for (int i = 0; i < SLOT_LAYER; ++i)
    if (!strcmp(name, model_names[i])) return i;
  char rest[80];
  if (sscanf(name, "layers.%u.%79s", layer, rest) != 2) return -1;
  for (int i = 0; i < 10; ++i)
    if (!strcmp(rest, layer_names[i])) return SLOT_LAYER + i;
  return -1;
}

/* The reference model's weights and the analytic gradient of tensor
 * `name` (same order as tensor_slot's names). */
static float *ref_weight(ref_model *m, const char *name) {
  unsigned l = 0;
  const int s = tensor_slot(name, &l);
  ck_assert_msg(s >= 0, "no reference array for %s", name);
  float *top[] = {m->embed, m->emb_norm, m->final_norm, m->out_proj};
  if (s < SLOT_LAYER) return top[s];
  const ref_layer *L = &m->layers[l];
  float *a[] = {L->wq, L->wk, L->wv, L->wg, L->wo, L->ret_norm,
                L->fc1, L->gate, L->fc2, L->ffn_norm};
  return a[s - SLOT_LAYER];
}
static double *ref_gradient(ref_model_grad *g, const char *name) {
  unsigned l = 0;
  const int s = tensor_slot(name, &l);
  ck_assert_msg(s >= 0, "no reference gradient for %s", name);
  double *top[] = {g->embed, g->emb_norm, g->final_norm, g->out_proj};
  if (s < SLOT_LAYER) return top[s];
  const ref_layer_grad *L = &g->layers[l];
  double *a[] = {L->wq, L->wk, L->wv, L->wg, L->wo, L->ret_norm,
                 L->fc1, L->gate, L->fc2, L->ffn_norm};
  return a[s - SLOT_LAYER];
}

/* Worst figures of one check, printed for the record. */
typedef struct worst {
  double norm, elem, fd;
} worst;

/* Every element of one tensor's device gradient against the exact one. */
static void device_vs_exact(const char *name, const float *got,
                            const double *exact, size_t n, double tol,
                            worst *w) {
  double diff2 = 0, ref2 = 0, largest = 0;
  for (size_t j = 0; j < n; ++j) {
    diff2 += (got[j] - exact[j]) * (got[j] - exact[j]);
    ref2 += exact[j] * exact[j];
    if (fabs(exact[j]) > largest) largest = fabs(exact[j]);
  }
  const double norm = sqrt(diff2 / (ref2 > 0 ? ref2 : 1));
  if (norm > w->norm) w->norm = norm;
  ck_assert_msg(norm <= tol,
                "%s: gradient differs from the exact one by %.3g norm-wise "
                "(seed %llu)",
                name, norm, (unsigned long long)tu_seed());
  for (size_t j = 0; j < n; ++j) {
    const double e = fabs(got[j] - exact[j]) / (fabs(exact[j]) + largest);
    if (e > w->elem) w->elem = e;
    ck_assert_msg(e <= tol,
                  "%s[%zu]: gradient %.9g, exact %.9g (seed %llu)", name, j,
                  (double)got[j], exact[j], (unsigned long long)tu_seed());
  }
}

/* A few elements of the exact gradient against central differences. */
static void exact_vs_differences(ref_model *m, const char *name,
                                 const double *exact, size_t n,
                                 const int32_t *tok, size_t B, size_t T,
                                 retcl_algorithm algo, worst *w) {
  float *wt = ref_weight(m, name);
  double largest = 0;
  for (size_t j = 0; j < n; ++j)
    if (fabs(exact[j]) > largest) largest = fabs(exact[j]);
  for (int s = 0, draws = 0; s < 3 && draws < 12; ++draws) {
    const size_t j = (size_t)(retcl_random_next(tu_rng()) % n);
    const float h = FD_STEP * (fabsf(wt[j]) > 0.1f ? fabsf(wt[j]) : 0.1f);
    const double d1 = central_difference(m, wt + j, h, tok, B, T, algo);
    const double d2 = central_difference(m, wt + j, h / 2, tok, B, T, algo);
    if (fabs(d1 - d2) > 1e-4 * (fabs(d2) + largest)) continue;
    ++s;
    /* Richardson: the h² terms cancel, what is left is O(h⁴). */
    const double fd = d2 + (d2 - d1) / 3;
    const double e = fabs(exact[j] - fd) / (fabs(fd) + largest);
    if (e > w->fd) w->fd = e;
    ck_assert_msg(e <= FD_TOL,
                  "%s[%zu]: exact gradient %.9g, finite difference %.9g "
                  "(seed %llu)",
                  name, j, exact[j], fd, (unsigned long long)tu_seed());
  }
}

static void check_grad(retcl_model_config cfg, retcl_algorithm algo,
                       int recompute) {
  retcl_context *ctx = tu_context();
  ref_model m;
  ref_model_random(&m, &cfg, 1, tu_rng());
  char dir[256];
  snprintf(dir, sizeof dir, "%s/retcl-grad-XXXXXX",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  ck_assert_int_eq(ref_checkpoint_write(&m, dir, "F32", 0), 0);
  retcl_model *model = NULL;
  tu_ok(ctx, retcl_model_load(ctx, dir, &model));
  enum { B = 2, T = 7 };
  int32_t tok[B * T];
  for (size_t i = 0; i < B * T; ++i)
    tok[i] = (int32_t)(retcl_random_next(tu_rng()) % cfg.vocab_size);
  retcl_train_options opt;
  retcl_train_options_default(&opt);
  opt.algorithm = algo;
  opt.recompute = recompute;
  float loss = NAN;
  tu_ok(ctx, retcl_model_forward_train(model, tok, B, T, &opt, &loss));
  ref_model_grad exact;
  const double want = ref_model_loss_grad_d(&m, tok, B, T, algo, 0, &exact);
  ck_assert_msg(fabs(loss - want) <= 1e-5 * fabs(want) + 1e-6,
                "loss %.9g, reference %.9g", (double)loss, want);
  const size_t n = retcl_model_param_count(model);
  cl_mem gbuf = tu_poisoned(ctx, n);
  tu_ok(ctx, retcl_model_backward(model, retcl_buf(gbuf, 0)));
  float *grad = tu_alloc(n);
  tu_download(ctx, gbuf, 0, grad, n);
  worst w = {0, 0, 0};
  for (size_t i = 0; i < retcl_model_tensor_count(model); ++i) {
    retcl_tensor_info t;
    tu_ok(ctx, retcl_model_tensor_info(model, i, &t));
    const size_t count = t.cols ? t.rows * t.cols : t.rows;
    device_vs_exact(t.name, grad + t.offset, ref_gradient(&exact, t.name),
                    count,
                    algo == RETCL_ALGO_RECURRENT   ? GRAD_TOL_RECURRENT
                    : algo == RETCL_ALGO_CHUNKWISE ? GRAD_TOL_CHUNKWISE
                                                   : GRAD_TOL_PARALLEL,
                    &w);
  }
  /* The analytic gradient against differences, on the same weights with
   * eps FD_EPS (the arrays shared, not copied). */
  ref_model tiny_eps = m;
  tiny_eps.cfg.layernorm_eps = FD_EPS;
  ref_model_grad exact_eps;
  ref_model_loss_grad_d(&tiny_eps, tok, B, T, algo, 0, &exact_eps);
  for (size_t i = 0; i < retcl_model_tensor_count(model); ++i) {
    retcl_tensor_info t;
    tu_ok(ctx, retcl_model_tensor_info(model, i, &t));
    const size_t count = t.cols ? t.rows * t.cols : t.rows;
    exact_vs_differences(&tiny_eps, t.name, ref_gradient(&exact_eps, t.name),
                         count, tok, B, T, algo, &w);
  }
  ref_model_grad_free(&exact_eps);
  /* Bitwise reproducible: a second backward of the same forward. */
  cl_mem again = tu_poisoned(ctx, n);
  tu_ok(ctx, retcl_model_backward(model, retcl_buf(again, 0)));
  float *grad2 = tu_alloc(n);
  tu_download(ctx, again, 0, grad2, n);
  ck_assert_msg(!memcmp(grad, grad2, n * sizeof *grad),
                "two backwards of one forward differ");
  free(grad2);
  clReleaseMemObject(again);
  printf("model gradient: algo %d recompute %d: loss %.6f; device against "
         "exact: worst %.2e norm-wise, %.2e element-wise; exact against "
         "finite differences: worst %.2e\n",
         (int)algo, recompute, (double)loss, w.norm, w.elem, w.fd);
  free(grad);
  clReleaseMemObject(gbuf);
  ref_model_grad_free(&exact);
  retcl_model_destroy(model);
  ref_checkpoint_remove(dir);
  ref_model_free(&m);
  retcl_context_destroy(ctx);
}

START_TEST(gradient_parallel) { check_grad(tiny(0, 1, 0), RETCL_ALGO_PARALLEL, 0); }
END_TEST
START_TEST(gradient_chunkwise_recompute) { check_grad(tiny(1, 0, 1), RETCL_ALGO_CHUNKWISE, 1); }
END_TEST
START_TEST(gradient_recurrent) { check_grad(tiny(0, 0, 0), RETCL_ALGO_RECURRENT, 0); }
END_TEST

START_TEST(rejected_calls) {
  retcl_context *ctx = tu_context();
  retcl_model_config cfg = tiny(0, 0, 0);
  char dir[256];
  snprintf(dir, sizeof dir, "%s/retcl-grad-XXXXXX",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  tu_ok(ctx, retcl_checkpoint_write_random(&cfg, 3, RETCL_DTYPE_F32, dir));
  retcl_model *model = NULL;
  tu_ok(ctx, retcl_model_load(ctx, dir, &model));
  const size_t n = retcl_model_param_count(model);
  cl_mem g = tu_poisoned(ctx, n), small = tu_poisoned(ctx, 8);
  tu_assert_status(ctx, retcl_model_backward(model, retcl_buf(g, 0)),
                   RETCL_ERROR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(retcl_last_error(ctx), "forward_train"));
  const int32_t tok[4] = {1, 2, 3, 4}, bad[4] = {1, 2, 99, 4};
  float loss = NAN;
  tu_assert_status(ctx, retcl_model_forward_train(model, tok, 1, 1, NULL, &loss),
                   RETCL_ERROR_INVALID_SIZE);
  ck_assert_ptr_nonnull(strstr(retcl_last_error(ctx), "at least 2"));
  tu_assert_status(ctx, retcl_model_forward_train(model, bad, 1, 4, NULL, &loss),
                   RETCL_ERROR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(retcl_last_error(ctx), "tokens[2] = 99"));
  tu_assert_status(ctx, retcl_model_forward_train(model, tok, 1, 4, NULL, NULL),
                   RETCL_ERROR_INVALID_ARGUMENT);
  ck_assert(isnan(loss));
  tu_ok(ctx, retcl_model_forward_train(model, tok, 1, 4, NULL, &loss));
  tu_assert_status(ctx, retcl_model_backward(model, retcl_buf(small, 0)),
                   RETCL_ERROR_BUFFER_TOO_SMALL);
  tu_assert_status(ctx, retcl_model_backward(model, retcl_model_params(model)),
                   RETCL_ERROR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(retcl_last_error(ctx), "overlaps"));
  float out[8];
  tu_download(ctx, small, 0, out, 8);
  for (int i = 0; i < 8; ++i) ck_assert(isnan(out[i]));
  clReleaseMemObject(g), clReleaseMemObject(small);
  retcl_model_destroy(model);
  ref_checkpoint_remove(dir);
  retcl_context_destroy(ctx);
}
END_TEST

int main(void) {
  Suite *s = suite_create("model_grad");
  TCase *t = tcase_create("grad");
  tcase_add_test(t, gradient_parallel);
  tcase_add_test(t, gradient_chunkwise_recompute);
  tcase_add_test(t, gradient_recurrent);
  tcase_add_test(t, rejected_calls);
  suite_add_tcase(s, t);
  return tu_run_suite(s);
}
