/* npy_compare.c - compare two [rows, cols] float32 .npy files as `retcl
 * run --logits` and `retcl-mpi run --logits` write them (format 1.0,
 * '<f4', C order), for tests/mpi/test_mpi_cli.sh:
 *
 *   npy_compare GOT.npy REF.npy TOL
 *
 * Prints the shapes and max |got - ref| / max |ref|; exit 0 when the
 * shapes are equal, every value is finite and that ratio is <= TOL, 1
 * otherwise (a file that is missing, not such a .npy, or still holds the
 * test's poison counts as a failure, with the reason). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct npy {
  size_t rows, cols;
  float *data;
} npy;

/* 0 and *out filled, or 1 with the reason printed. */
static int read_npy(const char *path, npy *out) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "npy_compare: cannot open %s\n", path);
    return 1;
  }
  unsigned char pre[10];
  char header[65536];
  int ok = fread(pre, 1, 10, f) == 10 && memcmp(pre, "\x93NUMPY", 6) == 0 &&
           pre[6] == 1 && pre[7] == 0;
  const size_t hlen = ok ? (size_t)pre[8] | (size_t)pre[9] << 8 : 0;
  ok = ok && hlen < sizeof header && fread(header, 1, hlen, f) == hlen;
  if (ok) header[hlen] = '\0';
  const char *shape = ok ? strstr(header, "'shape': (") : NULL;
  unsigned long long r = 0, c = 0;
  ok = ok && strstr(header, "'descr': '<f4'") &&
       strstr(header, "'fortran_order': False") && shape &&
       sscanf(shape, "'shape': (%llu, %llu)", &r, &c) == 2 && r && c;
  float *x = ok ? malloc((size_t)(r * c) * sizeof *x) : NULL;
  ok = ok && x;
  for (size_t i = 0; ok && i < r * c; ++i) {
    unsigned char b[4];
    if (fread(b, 1, 4, f) != 4) {
      ok = 0;
      break;
    }
    uint32_t bits = (uint32_t)b[0] | (uint32_t)b[1] << 8 |
                    (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    memcpy(&x[i], &bits, 4);
  }
  ok = ok && fgetc(f) == EOF; /* nothing after the data */
  fclose(f);
  if (!ok) {
    fprintf(stderr,
            "npy_compare: %s is not a 2-D float32 .npy of the expected "
            "size\n",
            path);
    free(x);
    return 1;
  }
  out->rows = (size_t)r;
  out->cols = (size_t)c;
  out->data = x;
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: npy_compare GOT.npy REF.npy TOL\n");
    return 2;
  }
  const double tol = atof(argv[3]);
  npy got = {0}, ref = {0};
  if (read_npy(argv[1], &got) || read_npy(argv[2], &ref)) {
    free(got.data);
    return 1;
  }
  int rc = 0;
  if (got.rows != ref.rows || got.cols != ref.cols) {
    fprintf(stderr, "npy_compare: %s is [%zu, %zu], %s is [%zu, %zu]\n",
            argv[1], got.rows, got.cols, argv[2], ref.rows, ref.cols);
    rc = 1;
  }
  double diff = 0, mag = 0;
  size_t worst = 0;
  for (size_t i = 0; !rc && i < got.rows * got.cols; ++i) {
    if (!isfinite(got.data[i]) || !isfinite(ref.data[i])) {
      fprintf(stderr, "npy_compare: value %zu is %g (got), %g (ref)\n", i,
              (double)got.data[i], (double)ref.data[i]);
      rc = 1;
      break;
    }
    const double d = fabs((double)got.data[i] - (double)ref.data[i]);
    if (d > diff) diff = d, worst = i;
    mag = fmax(mag, fabs((double)ref.data[i]));
  }
  if (!rc) {
    const double rel = mag > 0 ? diff / mag : diff;
    printf("npy_compare: [%zu, %zu], max |got - ref| = %.3g at [%zu, %zu], "
           "max |ref| = %.3g, relative %.3g (tolerance %.3g)\n",
           got.rows, got.cols, diff, worst / got.cols, worst % got.cols, mag,
           rel, tol);
    rc = rel <= tol ? 0 : 1;
  }
  free(got.data);
  free(ref.data);
  return rc;
}
