/* group_norm.cl - placeholder, replaced by the real kernel. */
__kernel void retcl_group_norm_gate(__global float *x) {}
