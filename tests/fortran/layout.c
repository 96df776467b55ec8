/* layout.c - sizeof and offsetof of retcl.h's structs, as the C compiler
 * lays them out, for tests/fortran/test_fortran.f90 to compare with its
 * bind(c) types (c_sizeof, and component addresses). Fields are numbered
 * in declaration order from 1; an unknown (type, field) gives SIZE_MAX. */
#include <stddef.h>
#include <stdint.h>

#include "retcl.h"

#define F(T, m) offsetof(T, m)

size_t retcl_ft_sizeof(int type) {
  switch (type) {
  case 1: return sizeof(retcl_buffer);
  case 2: return sizeof(retcl_packing);
  case 3: return sizeof(retcl_rotation_desc);
  case 4: return sizeof(retcl_retention_desc);
  case 5: return sizeof(retcl_group_norm_desc);
  case 6: return sizeof(retcl_projection);
  case 7: return sizeof(retcl_msr_weights);
  case 8: return sizeof(retcl_msr_desc);
  case 9: return sizeof(retcl_model_config);
  case 10: return sizeof(retcl_device_entry);
  case 11: return sizeof(retcl_tensor_info);
  case 12: return sizeof(retcl_train_options);
  case 13: return sizeof(retcl_adamw);
  case 14: return sizeof(retcl_sampler);
  default: return SIZE_MAX;
  }
}

size_t retcl_ft_offsetof(int type, int field) {
  static const size_t buffer[] = {F(retcl_buffer, mem), F(retcl_buffer, offset),
                                  F(retcl_buffer, type)};
  static const size_t packing[] = {
      F(retcl_packing, count), F(retcl_packing, offsets),
      F(retcl_packing, positions), F(retcl_packing, state_slots)};
  static const size_t rot[] = {
      F(retcl_rotation_desc, batch),  F(retcl_rotation_desc, tokens),
      F(retcl_rotation_desc, heads),  F(retcl_rotation_desc, layout),
      F(retcl_rotation_desc, pos0),   F(retcl_rotation_desc, is_key),
      F(retcl_rotation_desc, packing)};
  static const size_t ret[] = {
      F(retcl_retention_desc, batch),      F(retcl_retention_desc, tokens),
      F(retcl_retention_desc, heads),      F(retcl_retention_desc, key_dim),
      F(retcl_retention_desc, value_dim),  F(retcl_retention_desc, layout),
      F(retcl_retention_desc, algorithm),  F(retcl_retention_desc, form),
      F(retcl_retention_desc, chunk_size), F(retcl_retention_desc, scale),
      F(retcl_retention_desc, position),   F(retcl_retention_desc, packing)};
  static const size_t gn[] = {
      F(retcl_group_norm_desc, batch),    F(retcl_group_norm_desc, tokens),
      F(retcl_group_norm_desc, heads),    F(retcl_group_norm_desc, head_dim),
      F(retcl_group_norm_desc, layout),   F(retcl_group_norm_desc, kind),
      F(retcl_group_norm_desc, gate),     F(retcl_group_norm_desc, eps)};
  static const size_t proj[] = {F(retcl_projection, w), F(retcl_projection, y),
                                F(retcl_projection, n),
                                F(retcl_projection, alpha)};
  static const size_t w[] = {
      F(retcl_msr_weights, q_proj), F(retcl_msr_weights, k_proj),
      F(retcl_msr_weights, v_proj), F(retcl_msr_weights, g_proj),
      F(retcl_msr_weights, out_proj)};
  static const size_t msr[] = {
      F(retcl_msr_desc, batch),      F(retcl_msr_desc, tokens),
      F(retcl_msr_desc, embed_dim),  F(retcl_msr_desc, value_embed_dim),
      F(retcl_msr_desc, heads),      F(retcl_msr_desc, algorithm),
      F(retcl_msr_desc, form),       F(retcl_msr_desc, chunk_size),
      F(retcl_msr_desc, pos0),       F(retcl_msr_desc, norm_eps),
      F(retcl_msr_desc, packing)};
  static const size_t cfg[] = {
      F(retcl_model_config, embed_dim),
      F(retcl_model_config, value_embed_dim),
      F(retcl_model_config, heads),
      F(retcl_model_config, ffn_dim),
      F(retcl_model_config, layers),
      F(retcl_model_config, vocab_size),
      F(retcl_model_config, activation),
      F(retcl_model_config, layernorm_eps),
      F(retcl_model_config, no_scale_embedding),
      F(retcl_model_config, layernorm_embedding),
      F(retcl_model_config, deepnorm),
      F(retcl_model_config, share_embed),
      F(retcl_model_config, chunk_size)};
  static const size_t dev[] = {
      F(retcl_device_entry, index), F(retcl_device_entry, platform_index),
      F(retcl_device_entry, platform), F(retcl_device_entry, device),
      F(retcl_device_entry, type)};
  static const size_t ti[] = {F(retcl_tensor_info, name),
                              F(retcl_tensor_info, rows),
                              F(retcl_tensor_info, cols),
                              F(retcl_tensor_info, offset)};
  static const size_t to[] = {
      F(retcl_train_options, algorithm), F(retcl_train_options, chunk_size),
      F(retcl_train_options, recompute), F(retcl_train_options, ignore_index)};
  static const size_t aw[] = {
      F(retcl_adamw, lr),  F(retcl_adamw, beta1),        F(retcl_adamw, beta2),
      F(retcl_adamw, eps), F(retcl_adamw, weight_decay), F(retcl_adamw, clip_norm)};
  static const size_t sa[] = {F(retcl_sampler, temperature),
                              F(retcl_sampler, top_k)};
#define PICK(a)                                                              \
  return (field >= 1 && (size_t)field <= sizeof(a) / sizeof(a[0]))         \
             ? a[field - 1]                                                  \
             : SIZE_MAX
  switch (type) {
  case 1: PICK(buffer);
  case 2: PICK(packing);
  case 3: PICK(rot);
  case 4: PICK(ret);
  case 5: PICK(gn);
  case 6: PICK(proj);
  case 7: PICK(w);
  case 8: PICK(msr);
  case 9: PICK(cfg);
  case 10: PICK(dev);
  case 11: PICK(ti);
  case 12: PICK(to);
  case 13: PICK(aw);
  case 14: PICK(sa);
  default: return SIZE_MAX;
  }
}

/* The enum values the module's parameters must equal, by name order of
 * test_fortran.f90's list. */
int retcl_ft_enum(int which) {
  static const int v[] = {
      RETCL_SUCCESS, RETCL_ERROR_INVALID_ARGUMENT, RETCL_ERROR_INVALID_SIZE,
      RETCL_ERROR_BUFFER_TOO_SMALL, RETCL_ERROR_CONTEXT_MISMATCH,
      RETCL_ERROR_DEVICE_NOT_FOUND, RETCL_ERROR_UNSUPPORTED,
      RETCL_ERROR_BUILD_FAILED, RETCL_ERROR_OUT_OF_MEMORY, RETCL_ERROR_OPENCL,
      RETCL_ERROR_IO, RETCL_ERROR_FORMAT,
      RETCL_DTYPE_F32, RETCL_DTYPE_F16, RETCL_DTYPE_BF16,
      RETCL_LAYOUT_TOKEN_MAJOR, RETCL_LAYOUT_HEAD_MAJOR,
      RETCL_ALGO_PARALLEL, RETCL_ALGO_RECURRENT, RETCL_ALGO_CHUNKWISE,
      RETCL_FORM_RAW, RETCL_FORM_TORCHSCALE,
      RETCL_NORM_RMS, RETCL_NORM_LAYER,
      RETCL_GATE_SWISH, RETCL_GATE_GELU, RETCL_GATE_NONE,
      RETCL_ACT_GELU, RETCL_ACT_SWISH,
      RETCL_GEMM_NT, RETCL_GEMM_NN, RETCL_GEMM_TN,
      RETCL_STORAGE_F32, RETCL_STORAGE_F16, RETCL_STORAGE_BF16,
      RETCL_STORAGE_KEEP,
      RETCL_LOG_DEBUG, RETCL_LOG_INFO, RETCL_LOG_WARNING, RETCL_LOG_ERROR,
      RETCL_VERSION_NUMBER, (int)CL_MEM_READ_WRITE, CL_SUCCESS};
  return (which >= 1 && (size_t)which <= sizeof(v) / sizeof(v[0]))
             ? v[which - 1]
             : -1000;
}
