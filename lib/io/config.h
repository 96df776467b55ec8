/* config.h - config.json <-> retcl_model_config with torchscale's
 * RetNetConfig field names, and the check that a config can run
 * (config.c). */
#ifndef RETCL_IO_CONFIG_H
#define RETCL_IO_CONFIG_H

#include "retcl.h"

/* Parse config.json text (missing fields take torchscale's defaults). */
retcl_status retcl__config_parse(retcl_context *ctx, const char *path,
                                 const char *json_text,
                                 retcl_model_config *cfg);
/* Checks a config is consistent and that the kernels can run it (d % H ==
 * 0, dv % H == 0, Dk even, head dims, heads and chunk size within
 * ops/limits.h), naming the config.json field that is wrong. */
retcl_status retcl__config_validate(retcl_context *ctx, const char *path,
                                    const retcl_model_config *cfg);
/* config.json text for cfg (malloc'd, NULL when out of memory). */
char *retcl__config_to_json(const retcl_model_config *cfg);

#endif
