/* random.c - the library's one pseudo-random generator (splitmix64: tiny,
 * and its stream is fixed by the seed alone), used for random checkpoints,
 * sampling, and by the tests, tools and benchmarks for their data. */
#include "retcl.h"

uint64_t retcl_random_next(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

double retcl_random_uniform(uint64_t *state) {
  return (double)(retcl_random_next(state) >> 11) * 0x1.0p-53;
}
