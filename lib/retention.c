/* retention.c - placeholder until the kernels land. */
#include "internal.h"
retcl_status retcl_retention(retcl_context *ctx, const retcl_retention_desc *d,
                             retcl_buffer q, retcl_buffer k, retcl_buffer v,
                             retcl_buffer lg, retcl_buffer s_in,
                             retcl_buffer s_out, retcl_buffer out, cl_uint n,
                             const cl_event *wl, cl_event *ev) {
  return retcl__fail(ctx, RETCL_ERROR_UNSUPPORTED, "not implemented yet");
}
