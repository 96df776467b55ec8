/* packing.h - packed sequences (retcl_packing, a variable-length batch in
 * one token stream): the pure checks every op shares, and the small device
 * table the kernels that need per-token or per-sequence data read
 * (packing.c). */
#ifndef RETCL_OPS_PACKING_H
#define RETCL_OPS_PACKING_H

#include "retcl.h"

/* The words of one sequence's entry in the device table. */
enum {
  RETCL_SEQ_START = 0, /* first token in the stream */
  RETCL_SEQ_COUNT,     /* tokens */
  RETCL_SEQ_IN,        /* state index to start from, or RETCL_SEQ_NONE */
  RETCL_SEQ_OUT,       /* state index written (in the state or scratch) */
  RETCL_SEQ_OUT_SCRATCH, /* 1: OUT indexes the scratch, not the state */
  RETCL_SEQ_POSITION,  /* absolute position of the first token */
  RETCL_SEQ_WORDS
};
#define RETCL_SEQ_NONE 0xffffffffu

/* Checks of a packing against a desc's batch, tokens and layout: offsets
 * from 0 to tokens, non-decreasing; positions + lengths within 2^32 (pos0
 * for every sequence when positions is NULL); slots >= -1 and distinct.
 * *states: how many states a state buffer must hold (highest slot + 1;
 * count when state_slots is NULL). Messages name `op` and the entry. */
retcl_status retcl__packing_check(retcl_context *ctx, const char *op,
                                  const retcl_packing *pk, size_t batch,
                                  size_t tokens, retcl_layout layout,
                                  size_t pos0, size_t *states);

/* Sequence i's length, first position and slot (-1: none). */
size_t retcl__packing_length(const retcl_packing *pk, size_t i);
size_t retcl__packing_position(const retcl_packing *pk, size_t pos0,
                               size_t i);
long retcl__packing_slot(const retcl_packing *pk, size_t i);

/* The device table of a checked packing, one uint buffer: the absolute
 * position of every token ([tokens], read by the rotation), then one entry
 * of RETCL_SEQ_WORDS per sequence (read by the recurrent retention) with
 * state indices for a call that has state_in / state_out as given and
 * torchscale's rule that a sequence at position 0 starts empty (form 1).
 * Created with its contents (nothing enqueued); the caller releases it once
 * the kernels reading it are enqueued. */
retcl_status retcl__packing_upload(retcl_context *ctx, const char *op,
                                   const retcl_packing *pk, size_t tokens,
                                   size_t pos0, int has_state_in,
                                   int has_state_out, int torchscale,
                                   cl_mem *table);

/* Whether sequence i starts from its slot of state_in: it has a slot,
 * state_in is given, and (torchscale form) its position is not 0. */
int retcl__packing_reads_state(const retcl_packing *pk, size_t pos0,
                               size_t i, int has_state_in, int torchscale);

#endif
