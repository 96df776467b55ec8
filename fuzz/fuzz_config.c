/* fuzz_config.c - libFuzzer harness for the config.json reader
 * (lib/io/config.c): parse, validate, and for a config that validates, write
 * it back with retcl__config_to_json and check it parses to the same
 * struct (the checkpoint writer relies on that round trip). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/config.h"
#include "io/safetensors.h"

#define REQUIRE(cond)                                                     \
  do {                                                                    \
    if (!(cond)) {                                                        \
      fprintf(stderr, "fuzz_config: %s:%d: %s\n", __FILE__, __LINE__,     \
              #cond);                                                     \
      abort();                                                            \
    }                                                                     \
  } while (0)

static int same_config(const retcl_model_config *a,
                       const retcl_model_config *b) {
  return a->embed_dim == b->embed_dim &&
         a->value_embed_dim == b->value_embed_dim && a->heads == b->heads &&
         a->ffn_dim == b->ffn_dim && a->layers == b->layers &&
         a->vocab_size == b->vocab_size && a->activation == b->activation &&
         a->layernorm_eps == b->layernorm_eps &&
         a->no_scale_embedding == b->no_scale_embedding &&
         a->layernorm_embedding == b->layernorm_embedding &&
         a->deepnorm == b->deepnorm && a->share_embed == b->share_embed &&
         a->chunk_size == b->chunk_size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* The reader gets a NUL-terminated file (checkpoint.c's read_text_file). */
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = '\0';

  retcl_model_config cfg, before;
  memset(&cfg, 0xA5, sizeof cfg);
  before = cfg;
  retcl_status s = retcl__config_parse(NULL, "fuzz/config.json", text, &cfg);
  free(text);
  if (s != RETCL_SUCCESS) {
    REQUIRE(s == RETCL_ERROR_FORMAT || s == RETCL_ERROR_INVALID_SIZE);
    REQUIRE(retcl_last_error(NULL)[0] != '\0');
    REQUIRE(memcmp(&cfg, &before, sizeof cfg) == 0); /* all or nothing */
    return 0;
  }
  s = retcl__config_validate(NULL, "fuzz/config.json", &cfg);
  if (s != RETCL_SUCCESS) {
    REQUIRE(s == RETCL_ERROR_INVALID_SIZE);
    return 0;
  }
  char *json = retcl__config_to_json(&cfg);
  if (!json) return 0; /* out of memory */
  retcl_model_config again;
  s = retcl__config_parse(NULL, "round trip", json, &again);
  REQUIRE(s == RETCL_SUCCESS);
  REQUIRE(same_config(&cfg, &again));
  REQUIRE(retcl__config_validate(NULL, "round trip", &again) ==
          RETCL_SUCCESS);
  free(json);
  return 0;
}
