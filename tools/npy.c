/* npy.c - NumPy .npy format 1.0 writer (see npy.h). The layout is
 * numpy's documented one (numpy.lib.format):
 *   "\x93NUMPY", major 1, minor 0, uint16 little-endian HEADER_LEN,
 *   an ASCII Python dict literal padded with spaces and ended by '\n' so
 *   that 10 + HEADER_LEN is a multiple of 64 (aligned data for mmap),
 *   then the raw array data. */
#include "npy.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum { NPY_PREAMBLE = 10, NPY_ALIGN = 64 };

/* Builds magic + version + length + padded dict into out; returns the
 * total header size, or 0 if it does not fit (format 1.0 caps HEADER_LEN
 * at 65535, far above any 2-D shape). */
static size_t build_header(size_t rows, size_t cols, unsigned char *out,
                           size_t cap) {
  char dict[256];
  int n = snprintf(dict, sizeof dict,
                   "{'descr': '<f4', 'fortran_order': False, "
                   "'shape': (%zu, %zu), }",
                   rows, cols);
  if (n < 0 || (size_t)n >= sizeof dict) return 0;
  /* +1 for the terminating '\n', then round the whole header up. */
  size_t total = NPY_PREAMBLE + (size_t)n + 1;
  total = (total + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN;
  if (total > cap || total - NPY_PREAMBLE > 65535) return 0;
  size_t header_len = total - NPY_PREAMBLE;
  memcpy(out, "\x93NUMPY", 6);
  out[6] = 1; /* major */
  out[7] = 0; /* minor */
  out[8] = (unsigned char)(header_len & 0xff);
  out[9] = (unsigned char)(header_len >> 8);
  memcpy(out + NPY_PREAMBLE, dict, (size_t)n);
  memset(out + NPY_PREAMBLE + n, ' ', total - NPY_PREAMBLE - (size_t)n - 1);
  out[total - 1] = '\n';
  return total;
}

/* '<f4' means little-endian whatever the host is: write the bytes of each
 * float's bit pattern explicitly, a block at a time. */
static int write_le_floats(FILE *f, const float *data, size_t n) {
  unsigned char buf[4096];
  size_t used = 0;
  for (size_t i = 0; i < n; ++i) {
    uint32_t bits;
    memcpy(&bits, &data[i], 4);
    for (int b = 0; b < 4; ++b) buf[used++] = (unsigned char)(bits >> (8 * b));
    if (used == sizeof buf || i + 1 == n) {
      if (fwrite(buf, 1, used, f) != used) return 0;
      used = 0;
    }
  }
  return 1;
}

int npy_write_f32_2d(const char *path, const float *data, size_t rows,
                     size_t cols) {
  unsigned char header[512];
  size_t hlen = build_header(rows, cols, header, sizeof header);
  if (!hlen) return EINVAL;
  FILE *f = fopen(path, "wb");
  if (!f) return errno ? errno : EIO;
  int ok = fwrite(header, 1, hlen, f) == hlen &&
           write_le_floats(f, data, rows * cols);
  int err = ok ? 0 : (errno ? errno : EIO);
  if (fclose(f) != 0 && !err) err = errno ? errno : EIO;
  if (err) remove(path); /* a truncated array would load as garbage */
  return err;
}
