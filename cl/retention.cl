/* retention.cl - placeholder, replaced by the real kernels. */
__kernel void retcl_retention_chunk_state(__global float *x) {}
__kernel void retcl_retention_chunk_scan(__global float *x) {}
__kernel void retcl_retention_chunk_output(__global float *x) {}
__kernel void retcl_retention_recurrent(__global float *x) {}
