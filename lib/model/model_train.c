/* model_train.c - the training pass of a model: a forward that keeps what
 * the backward needs (the tape), and the backward writing the gradient of
 * the mean next-token cross-entropy into a vector laid out like the
 * parameters (docs/design.md §1.7). */
#include "model/model.h"

#include <stdlib.h>

void retcl__train_tape_free(retcl_model *m) {
  (void)m;
}
