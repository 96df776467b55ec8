/* group_norm.c - placeholder until the fused kernel lands. */
#include "internal.h"
retcl_status retcl_group_norm_gate(retcl_context *ctx,
                                   const retcl_group_norm_desc *desc,
                                   retcl_buffer x, retcl_buffer gate,
                                   retcl_buffer weight, retcl_buffer bias,
                                   retcl_buffer out, cl_uint n,
                                   const cl_event *wl, cl_event *ev) {
  return retcl__fail(ctx, RETCL_ERROR_UNSUPPORTED, "not implemented yet");
}
