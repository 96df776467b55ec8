/*
 * retcl_mpi.h - RetCL over MPI: one RetCL context per rank on the caller's
 * communicator, and retention of one sequence split across ranks
 * (docs/hpc.md, docs/design.md §1.8).
 *
 * The optional component libretcl_mpi (CMake: find_package(RetCL
 * COMPONENTS MPI), target RetCL::retcl_mpi; pkg-config: retcl-mpi). It
 * uses only RetCL's public API, and MPI as the caller's code does.
 *
 * Conventions, beyond retcl.h's:
 *  - Every function marked "Collective" must be called by every rank of
 *    the handle's communicator, in the same order. Errors are agreed
 *    before every exchange: when one rank's arguments are bad (or its
 *    device fails), EVERY rank returns an error, nobody waits for a
 *    message that never comes. The failing rank returns its own status
 *    and message; the others return the same status with the message
 *    "rank N failed: <its message>".
 *  - RetCL's messages go over a duplicate of the caller's communicator
 *    (MPI_Comm_dup), so they never match the caller's own receives.
 *  - States cross ranks through host memory: each rank reads its state
 *    from the device, MPI moves it, the receiver writes it back (GPU-aware
 *    MPI could move device buffers directly; not used yet).
 *  - MPI must be initialised (MPI_Init or MPI_Init_thread) before the first
 *    call and finalised after retcl_mpi_destroy. A handle is used by one
 *    thread at a time (MPI_THREAD_SINGLE or FUNNELED is enough).
 */
#ifndef RETCL_MPI_H
#define RETCL_MPI_H

#include <mpi.h>

#include "retcl.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(RETCL_STATIC_DEFINE) || defined(_WIN32)
#define RETCL_MPI_API
#else
#define RETCL_MPI_API __attribute__((visibility("default")))
#endif

/** Opaque: a rank's RetCL context, the duplicated communicator, staging
 *  buffers and the message of the last failure. */
typedef struct retcl_mpi retcl_mpi;

/**
 * Make this rank's handle on comm: duplicates comm and creates a RetCL
 * context (retcl_context_create(platform, device)). device NULL with
 * RETCL_DEVICE unset picks a device by node-local rank: the ranks of one
 * node (MPI_Comm_split_type(MPI_COMM_TYPE_SHARED)) take the node's GPUs
 * (every device when it has none) in turn, local rank modulo their count.
 * Pass a device (an index or a name substring, as retcl_context_create) to
 * choose it yourself. *out is NULL on failure; the message is in
 * retcl_mpi_last_error(NULL). Errors: INVALID_ARGUMENT (NULL out,
 * MPI_COMM_NULL, MPI not initialised), DEVICE_NOT_FOUND, OPENCL, and
 * those of retcl_context_create; any rank's failure fails every rank.
 * Blocks. Collective.
 */
RETCL_MPI_API retcl_status retcl_mpi_create(MPI_Comm comm,
                                            const char *platform,
                                            const char *device,
                                            retcl_mpi **out);

/**
 * Make this rank's handle on comm around the caller's own context ctx
 * (e.g. from retcl_context_wrap over the application's OpenCL objects).
 * The handle does not own ctx: destroy the handle before the context.
 * Errors as retcl_mpi_create. Blocks. Collective.
 */
RETCL_MPI_API retcl_status retcl_mpi_wrap(MPI_Comm comm, retcl_context *ctx,
                                          retcl_mpi **out);

/** Free the handle: its staging buffers, the duplicated communicator
 *  (MPI_Comm_free, collective over it) and the context it created (not a
 *  wrapped one). NULL is a no-op. Collective. */
RETCL_MPI_API void retcl_mpi_destroy(retcl_mpi *h);

/** The rank's RetCL context (for buffers and the ops of retcl.h). */
RETCL_MPI_API retcl_context *retcl_mpi_context(const retcl_mpi *h);
/** Rank and size in the handle's communicator (the same as in the
 *  caller's). -1 / 0 for NULL. */
RETCL_MPI_API int retcl_mpi_rank(const retcl_mpi *h);
RETCL_MPI_API int retcl_mpi_size(const retcl_mpi *h);
/** The handle's duplicate of the caller's communicator (owned by the
 *  handle; MPI_COMM_NULL for NULL). */
RETCL_MPI_API MPI_Comm retcl_mpi_comm(const retcl_mpi *h);
/** Message of the last failed call on h ("" if none); with h == NULL the
 *  last failed retcl_mpi_create/_wrap of the calling thread. */
RETCL_MPI_API const char *retcl_mpi_last_error(const retcl_mpi *h);

/** How ranks combine their slices' (decay, state) pairs. */
typedef enum retcl_mpi_scan {
  /** MPI_Exscan with a user operation (non-commutative) over a derived
   *  datatype holding one pair: log2(P) message rounds in common MPIs. */
  RETCL_MPI_SCAN_EXSCAN = 0,
  /** A ring: rank r receives the prefix of ranks 0..r-1 from r-1, combines
   *  its own pair and sends to r+1: P-1 rounds, one message per rank. */
  RETCL_MPI_SCAN_RING = 1
} retcl_mpi_scan;

/** What one retcl_mpi_retention call moved and how long its parts took,
 *  on this rank. */
typedef struct retcl_mpi_stats {
  /** One pair as sent: 16 + 4·H + 4·B·H·Dk·Dv bytes (a header with the
   *  token count, the H total log decays L·log γ_h, the B·H states),
   *  independent of the slice's length. */
  size_t pair_bytes;
  /** State hand-off bytes this rank passed to MPI to send and received
   *  from it: ring, exact (pair_bytes on ranks that send / receive);
   *  Exscan, the pair handed to and returned by MPI_Exscan (pair_bytes
   *  each; MPI's algorithm decides the messages underneath). */
  size_t bytes_sent, bytes_received;
  /** Bytes of the error agreements (status, shape record, a message on
   *  failure): a few hundred bytes times the number of ranks. */
  size_t control_bytes;
  /** Seconds (MPI_Wtime): the slice's own pass (torchscale chunkwise: its
   *  state-only pass), the exchange (including waiting for slower ranks),
   *  the finish with the incoming state (add_state and the state_out
   *  write; torchscale chunkwise: the slice's full pass). */
  double seconds_local, seconds_exchange, seconds_finish;
} retcl_mpi_stats;

/**
 * Retention of ONE batch of sequences split along the tokens across the
 * handle's ranks (docs/design.md §1.8). Each rank passes its own contiguous
 * slice: desc->tokens >= 1 is its slice's length (ranks may differ; a slice
 * of one token is fine), q, k, v and out hold its slice's tokens; slices
 * follow in rank order. Everything else in desc (batch, heads, key_dim,
 * value_dim, layout, algorithm, form, chunk_size, scale) must be the same on
 * every rank, as must log_decay's values.
 *
 * state_in: rank 0 only (another rank passing one is an error): the state
 *   the sequence starts from, as retcl_retention takes it (torchscale form:
 *   with desc->position = the tokens it has absorbed). Other ranks' desc->
 *   position is ignored: their incoming state and position come from the
 *   ranks before them.
 * state_out: optional on every rank: the state after the rank's slice, in
 *   desc->form's convention (torchscale: S_n / sqrt(c_n), n = tokens up to
 *   the slice's end). On the LAST rank it is the decode state of the whole
 *   sequence, what retcl_retention on one device would return.
 *
 * How: every rank computes its slice from zero (rank 0 from state_in):
 * its outputs and its pair (L·log γ per head, the raw state); the ranks
 * combine the pairs with an exclusive scan under (a1,S1)∘(a2,S2) =
 * (a1·a2, a2·S1 + S2) (scan selects MPI_Exscan or a ring); every rank but
 * 0 then adds its incoming state's term to its outputs
 * (retcl_retention_add_state, one O(L·Dk·Dv) pass) and sets state_out =
 * γ^L·S_in + S_local on the host. Each rank runs its slice once. The
 * torchscale chunkwise form's normalisers depend on the state, so there
 * every rank first computes only its state (retcl_retention with out
 * absent, ~1/3 of a pass), and runs its slice with the incoming state
 * after the exchange (~1.3 passes). Per rank, the exchange moves one
 * pair, independent of the slice length (stats).
 *
 * Forms: RETCL_FORM_RAW with every algorithm and any split. Torchscale
 * recurrent: any split (the pair carries the token count, c_n follows).
 * Torchscale chunkwise: every slice must start at a multiple of the chunk
 * size (counting desc->position of rank 0), since its results depend on
 * where chunks start; otherwise UNSUPPORTED. Torchscale parallel:
 * UNSUPPORTED (its row normaliser sums over all earlier tokens, which no
 * state carries, so a split is not exact). Packed batches: UNSUPPORTED.
 *
 * Errors (agreed across ranks, see above): INVALID_ARGUMENT, INVALID_SIZE,
 * BUFFER_TOO_SMALL, CONTEXT_MISMATCH, UNSUPPORTED, OUT_OF_MEMORY,
 * BUILD_FAILED, OPENCL. A call rejected by the argument checks (before any
 * rank computes) writes nothing on any rank; a device failure later may
 * leave out partly written. stats may be NULL. Blocks until out and
 * state_out are written (the caller's earlier commands on the context's
 * in-order queue run first). Collective.
 */
RETCL_MPI_API retcl_status retcl_mpi_retention(
    retcl_mpi *h, const retcl_retention_desc *desc, retcl_mpi_scan scan,
    retcl_buffer q, retcl_buffer k, retcl_buffer v, retcl_buffer log_decay,
    retcl_buffer state_in, retcl_buffer state_out, retcl_buffer out,
    retcl_mpi_stats *stats);

/** How retcl_mpi_model_load divides a model over the ranks. */
typedef enum retcl_mpi_split {
  /** Every rank holds the whole model and runs its own contiguous slice of
   *  the tokens; each layer's retention is joined by the scan of
   *  retcl_mpi_retention (its exchange per layer). */
  RETCL_MPI_SPLIT_SEQUENCE = 0,
  /** Rank r holds heads and FFN hidden units [r·n/P, (r+1)·n/P) (as even
   *  as the counts allow; needs P <= heads and P <= ffn_dim) and the whole
   *  embedding, norms and output projection; the out projection's and the
   *  FFN's partial outputs are summed with MPI_Allreduce, twice per layer. */
  RETCL_MPI_SPLIT_HEADS = 1
} retcl_mpi_split;

/**
 * Load the checkpoint in dir on every rank, split as `split` says
 * (retcl_model_load_split with hooks over the handle's communicator; the
 * model runs on retcl_mpi_context(h)). Every forward entry point of retcl.h
 * on the returned model is then COLLECTIVE over the handle's ranks, with
 * errors agreed as retcl_mpi_retention's are:
 *  - heads split: every rank passes the same tokens (batch, length,
 *    algorithm, chunk) and gets the logits of all of them; decode states
 *    and pools hold the rank's heads (retcl_decode_state_copy fills one
 *    from a whole state); retcl_model_forward, _last, _forward_packed and
 *    retcl_model_decode_step all work.
 *  - sequence split: each rank passes its own slice (the same batch; ranks'
 *    slices follow in rank order) and gets its slice's logits (_last: of
 *    its slice's last token); positions continue across ranks. From an
 *    empty state only; recurrent (any split) or chunkwise (every rank's
 *    slice but the last a multiple of the chunk size); parallel is
 *    UNSUPPORTED (as for retcl_mpi_retention). A decode state passed in
 *    ends holding the whole sequence on EVERY rank (the last rank's states
 *    are broadcast), position = all tokens.
 * The handle must outlive the model. Errors: those of retcl_model_load_as
 * and INVALID_SIZE (more ranks than heads or FFN units), agreed across
 * ranks. Blocks. Collective.
 */
RETCL_MPI_API retcl_status retcl_mpi_model_load(retcl_mpi *h,
                                                const char *dir,
                                                retcl_mpi_split split,
                                                retcl_storage storage,
                                                retcl_model **out);

/** What the split models of a handle exchanged since the last
 *  retcl_mpi_model_stats_reset, on this rank. */
typedef struct retcl_mpi_model_stats {
  size_t layer_calls;       /**< layer passes (forwards × layers) */
  size_t bytes_sent, bytes_received; /**< payload handed to / returned by
                                          MPI: Allreduce of partial sums
                                          (heads), state pairs (sequence) */
  size_t control_bytes;     /**< error agreements */
  double seconds_exchange;  /**< in MPI, waiting for slower ranks included */
  double seconds_device;    /**< reading / writing the exchanged data */
} retcl_mpi_model_stats;

/** The handle's model statistics; `reset` zeroes them after reading. */
RETCL_MPI_API void retcl_mpi_model_stats_get(retcl_mpi *h,
                                             retcl_mpi_model_stats *out,
                                             int reset);

#ifdef __cplusplus
}
#endif

#endif
