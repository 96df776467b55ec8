/* main.c - a downstream program built against an *installed* RetCL, once
 * through find_package(RetCL) and once through pkg-config. It proves that
 * the header, the library and the package files fit together: the header
 * and the loaded library agree on the version, and a context can be made. */
#include <stdio.h>

#include <retcl.h>

int main(void) {
  printf("RetCL header %d.%d.%d, library %s\n", RETCL_VERSION_MAJOR,
         RETCL_VERSION_MINOR, RETCL_VERSION_PATCH, retcl_version_string());
  /* A mismatch means an older libretcl.so was found first at run time. */
  if (retcl_version_number() != RETCL_VERSION_NUMBER) {
    fprintf(stderr, "consumer: header is %d but the library is %d\n",
            RETCL_VERSION_NUMBER, retcl_version_number());
    return 1;
  }
  retcl_context *ctx = NULL;
  retcl_status st = retcl_context_create(NULL, NULL, &ctx);
  if (st != RETCL_SUCCESS) {
    fprintf(stderr, "consumer: retcl_context_create: %s: %s\n",
            retcl_status_string(st), retcl_last_error(NULL));
    return 1;
  }
  char name[256] = "";
  clGetDeviceInfo(retcl_context_device(ctx), CL_DEVICE_NAME, sizeof name, name,
                  NULL);
  printf("context on %s\n", name);
  retcl_context_destroy(ctx);
  return 0;
}
