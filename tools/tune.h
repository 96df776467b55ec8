/* tune.h - what `retcl tune` is made of: one driver (cmd_tune.c: budget,
 * progress bar, candidate records, checking before timing, re-measuring,
 * writing the file) and one description per kernel family (tune_families.c,
 * tune_model.c). A description says which shapes the family is timed at,
 * how their inputs and double-precision references are made, how one shape
 * runs through the public API on a context and how its output is checked,
 * and which values of the family's keys the search tries. The driver knows
 * nothing about any family beyond this, so adding one is adding a
 * description. */
#ifndef RETCL_TUNE_H
#define RETCL_TUNE_H

#include <stddef.h>
#include <stdint.h>

#include "retcl.h"

/* One shape a family is timed at: a row of the results table. */
typedef struct tune_shape {
  const char *what;
  double work; /* of one run, in the family's unit: flops or bytes */
} tune_shape;

enum { TUNE_MAX_AXES = 6, TUNE_MAX_VALUES = 8 };

/* One key of the family and the few values the search tries for it. */
typedef struct tune_axis {
  const char *key; /* as `retcl params` names it within the family */
  size_t n;
  long values[TUNE_MAX_VALUES];
} tune_axis;

/* The candidates of one access pattern: every combination of the axes'
 * values (first axis outermost). A few values per key keeps the product
 * small enough to finish in minutes; no axes is the pattern alone. */
typedef struct tune_grid {
  size_t n_axes;
  tune_axis axes[TUNE_MAX_AXES];
} tune_grid;

/* What check() found. */
typedef enum tune_verdict {
  TUNE_RIGHT = 0, /* within the op's fp32 bound of the reference */
  TUNE_WRONG,     /* outside it: the candidate is rejected */
  TUNE_NO_CHECK   /* the output could not be read back (why says why) */
} tune_verdict;

typedef struct tune_family {
  const char *name;  /* the JSON object of a RETCL_PARAMS file, --family */
  const char *about; /* one line for `retcl help tune` */
  /* How the table shows a shape's speed: "GF/s" (work in flops), "GB/s"
   * (work in bytes), or NULL for milliseconds. */
  const char *unit;
  /* Members every record of the family holds, written as JSON ("\"backend\":
   * \"retcl\"": the gemm family is only ever RetCL's GEMM), or NULL. */
  const char *fixed;
  /* 1: records name the family's access pattern, so a record tuned for
   * one pattern never applies its values to the other (a device of the
   * other type, RETCL_KERNEL_PATHS). */
  int pin_access;
  /* 1: the other access pattern is a candidate too: first with its
   * defaults, after the device's own grid with its own. */
  int other_pattern;
  tune_grid grid[2]; /* indexed by pattern: [0] gpu, [1] cpu */
  size_t n_shapes;
  const tune_shape *shapes;

  /* Host inputs and double-precision references of every shape, from the
   * generator *rng. Returns 0 with a message in why on failure. */
  int (*setup)(uint64_t *rng, char *why, size_t cap);
  /* Frees what setup made (also after a failed setup). */
  void (*teardown)(void);
  /* The inputs on a context whose record is the candidate's (device
   * buffers, a plan, a loaded model) into *inst. On failure: a message in
   * why, and nothing left allocated. */
  retcl_status (*open)(retcl_context *ctx, void **inst, char *why,
                       size_t cap);
  /* Enqueue shape i once on the context's queue (the driver waits). On
   * failure the message is retcl_last_error of the context. */
  retcl_status (*run)(void *inst, size_t i);
  /* Shape i's output after a run, against the reference. */
  tune_verdict (*check)(void *inst, size_t i, char *why, size_t cap);
  void (*close)(void *inst);
} tune_family;

/* Every family, in the order of `retcl params`. */
extern const tune_family tune_family_rotation, tune_family_retention,
    tune_family_group_norm, tune_family_elementwise, tune_family_linear,
    tune_family_gemm;

/* ---- helpers the descriptions share (tune_families.c) ------------------ */

/* ‖out − ref‖₂ / ‖ref‖₂, the relative error the tests bound; +inf when out
 * holds a NaN or an infinity. */
double tune_rel_error(const float *out, const double *ref, size_t n);
/* x[i] uniform in [lo, hi) from *rng. */
void tune_fill(float *x, size_t n, double lo, double hi, uint64_t *rng);
/* A device buffer of n floats holding host, or NaN when host is NULL (an
 * output a kernel forgets to write then fails its check). NULL on
 * failure, with a message in why. */
cl_mem tune_buffer(retcl_context *ctx, const float *host, size_t n, char *why,
                   size_t cap);
/* n floats of mem into host (blocking); 0 with a message on failure. */
int tune_read(retcl_context *ctx, cl_mem mem, float *host, size_t n, char *why,
              size_t cap);
/* Releases each non-NULL buffer of mems[0..n) and sets it to NULL. */
void tune_release(cl_mem *mems, size_t n);

#endif /* RETCL_TUNE_H */
