/* reference.h - the RetCL reference library (retcl_reference), all of it:
 * double-precision CPU references written from the formulas of docs/design.md,
 * independently of lib/ and cl/. One header per piece:
 *   ref_util.h        tensor indexing, float <-> double helpers
 *   ref_rotation.h    rotation Θ and xPos (docs/design.md §1.1), and its
 *                     transpose (the gradient, 1.7)
 *   ref_retention.h   raw (1.3) and torchscale (1.4) retention, all three
 *                     algorithms
 *   ref_retention_grad.h  their analytic backward (1.7), and torchscale's
 *                     forward with its normalisers held fixed
 *   ref_group_norm.h  group norm fused with the gate (1.5)
 *   ref_group_norm_grad.h  its analytic gradient (1.7)
 *   ref_layer.h       torch Linear and the multi-scale retention layer (1.6)
 *   ref_gemm.h        the dense products nt, nn, tn (1.9) and their bound
 *   ref_model.h       the RetNet decoder (1.6) and its random weights
 *   ref_model_grad.h  its training loss's analytic gradient (1.7)
 *   ref_checkpoint.h  a reference model written as a checkpoint folder
 *   ref_train_ops.h   GLU, embedding and cross-entropy gradients, the
 *                     gradient norm, AdamW and the schedule (1.7)
 * Tensors use the library's layouts (retcl_layout); states are
 * [B, H, Dk, Dv]. The references abort on out-of-memory: they are oracles
 * for small shapes, not production code. */
#ifndef RETCL_REFERENCE_H
#define RETCL_REFERENCE_H

#include "ref_checkpoint.h"
#include "ref_gemm.h"
#include "ref_group_norm.h"
#include "ref_group_norm_grad.h"
#include "ref_layer.h"
#include "ref_model.h"
#include "ref_model_grad.h"
#include "ref_retention.h"
#include "ref_retention_grad.h"
#include "ref_rotation.h"
#include "ref_train_ops.h"
#include "ref_util.h"

#endif
