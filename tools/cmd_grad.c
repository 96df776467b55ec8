/* cmd_grad.c - `retcl grad`: the loss of a model on one token sequence (the
 * mean next-token cross-entropy) and the gradient of every weight, written
 * as safetensors under the checkpoint's tensor names, so they can be set
 * beside any other implementation's gradients. */
#include <math.h>
#include <stdlib.h>

#include "cli.h"

typedef struct grad_opts {
  const char *model_dir, *tokens, *mode, *out, *device, *platform;
  size_t chunk;
  int recompute;
} grad_opts;

static void grad_usage(FILE *out) {
  fprintf(out,
          "usage: retcl grad --model DIR --tokens ID,ID,... --out FILE\n"
          "                  [--mode parallel|chunkwise|recurrent] [--chunk C]\n"
          "                  [--recompute] [--device D] [--platform P]\n"
          "\n"
          "The loss of the checkpoint in DIR on one token sequence, the mean\n"
          "over positions i = 0 .. T-2 of the cross-entropy of the logits at\n"
          "i against token i + 1 (torch's cross_entropy(logits[:-1],\n"
          "tokens[1:])), and its gradient with respect to every weight, of\n"
          "the model's own forward in the chosen mode. FILE (safetensors,\n"
          "fp32) holds \"loss\" and one tensor per weight, named as in the\n"
          "checkpoint (a tied embedding's gradient sums both uses).\n"
          "\n"
          "  --model DIR     checkpoint folder (required)\n"
          "  --tokens LIST   comma-separated token ids, at least 2 (required)\n"
          "  --out FILE      where to write the loss and gradients (required)\n"
          "  --mode M        parallel, chunkwise (default) or recurrent\n"
          "  --chunk C       chunkwise chunk size; default the checkpoint's\n"
          "  --recompute     keep only each layer's input and recompute the\n"
          "                  rest during the backward (less memory)\n"
          "  --device D      device index or name substring\n"
          "  --platform P    platform index or name substring\n");
}

static int grad_run(int argc, char **argv) {
  grad_opts o = {0};
  o.mode = "chunkwise";
  const cli_option opts[] = {
      {"model", CLI_OPT_STRING, &o.model_dir},
      {"tokens", CLI_OPT_STRING, &o.tokens},
      {"out", CLI_OPT_STRING, &o.out},
      {"mode", CLI_OPT_STRING, &o.mode},
      {"chunk", CLI_OPT_SIZE, &o.chunk},
      {"recompute", CLI_OPT_FLAG, &o.recompute},
      {"device", CLI_OPT_STRING, &o.device},
      {"platform", CLI_OPT_STRING, &o.platform},
  };
  const int parsed = cli_parse_options("grad", argc, argv, opts,
                                       sizeof opts / sizeof opts[0]);
  if (parsed == CLI_PARSE_HELP) {
    grad_usage(stdout);
    return CLI_EXIT_OK;
  }
  if (parsed != CLI_PARSE_OK) return CLI_EXIT_USAGE;
  if (!o.model_dir) return cli_usage_error("grad", "--model DIR is required");
  if (!o.tokens) return cli_usage_error("grad", "--tokens LIST is required");
  if (!o.out) return cli_usage_error("grad", "--out FILE is required");
  retcl_train_options topt;
  retcl_train_options_default(&topt);
  if (!cli_parse_algorithm(o.mode, &topt.algorithm))
    return cli_usage_error(
        "grad", "--mode is parallel, chunkwise or recurrent, not '%s'", o.mode);
  topt.chunk_size = o.chunk;
  topt.recompute = o.recompute;
  int32_t *tok = NULL;
  size_t T = 0;
  int rc = cli_parse_tokens("grad", "tokens", o.tokens, &tok, &T);
  if (rc) return rc;
  if (T < 2) {
    free(tok);
    return cli_usage_error("grad", "--tokens needs at least 2 ids (the loss "
                                   "predicts each next one)");
  }
  retcl_context *ctx = NULL;
  retcl_model *model = NULL;
  double load_s = 0;
  rc = cli_open_model(o.platform, o.device, o.model_dir, &ctx, &model,
                      &load_s);
  cl_mem grads = NULL;
  if (!rc) {
    cl_int err = CL_SUCCESS;
    grads = clCreateBuffer(retcl_context_cl_context(ctx), CL_MEM_READ_WRITE,
                           retcl_model_param_count(model) * sizeof(float),
                           NULL, &err);
    if (!grads) rc = cli_cl_error("clCreateBuffer(gradients)", err);
  }
  float loss = NAN;
  double t0 = cli_now(), t1 = t0;
  retcl_status st;
  if (!rc && (st = retcl_model_forward_train(model, tok, 1, T, &topt, &loss)))
    rc = cli_fail(ctx, st, "the training forward");
  if (!rc && (st = retcl_model_backward(model, retcl_buf(grads, 0))))
    rc = cli_fail(ctx, st, "the backward");
  if (!rc && (st = retcl_finish(ctx))) rc = cli_fail(ctx, st, "the backward");
  t1 = cli_now();
  const char *names[] = {"loss"};
  if (!rc && (st = retcl_model_save_tensors(model, retcl_buf(grads, 0), o.out,
                                            names, &loss, 1)))
    rc = cli_fail(ctx, st, "writing the gradients");
  if (!rc) {
    char dev[256], bytes[32];
    printf("device:  %s\n", cli_device_description(ctx, dev, sizeof dev));
    printf("tokens:  %zu, mode %s%s\n", T, cli_algorithm_name(topt.algorithm),
           topt.recompute ? ", recomputing each layer" : "");
    printf("loss:    %.9g (mean over %zu predictions)\n", (double)loss, T - 1);
    printf("tensors: %zu gradients and the loss in %s\n",
           retcl_model_tensor_count(model), o.out);
    printf("time:    %.3f s forward + backward, training memory %s\n", t1 - t0,
           cli_format_bytes(retcl_model_train_bytes(model), bytes,
                            sizeof bytes));
  }
  if (grads) clReleaseMemObject(grads);
  cli_close_model(ctx, model);
  free(tok);
  return rc;
}

const cli_command cli_cmd_grad = {
    "grad", "loss and gradient of every weight on a token sequence",
    grad_run, grad_usage};
