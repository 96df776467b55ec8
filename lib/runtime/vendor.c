/* vendor.c - which vendor's driver a device belongs to, from the strings
 * drivers really report. Pure (no OpenCL calls), so the test suite checks
 * it on recorded strings of devices it does not have. */
#include "runtime/params.h"

#include <ctype.h>
#include <string.h>

int retcl__contains_ci(const char *hay, const char *needle) {
  if (!hay) return 0;
  const size_t n = strlen(needle);
  for (; *hay; ++hay) {
    size_t i = 0;
    while (i < n && hay[i] &&
           tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
      ++i;
    if (i == n) return 1;
  }
  return n == 0;
}

retcl_vendor retcl__vendor_of(const char *platform_name,
                              const char *device_vendor,
                              const char *device_name, cl_uint vendor_id) {
  /* PoCL first: its CPU devices report the CPU maker as their vendor
   * ("GenuineIntel", "AuthenticAMD"), but the driver, and so what runs
   * fast, is PoCL's. Its platform is "Portable Computing Language"; its
   * devices are named "pthread-<cpu>", "cpu-<cpu>" or "basic-<cpu>". */
  if (retcl__contains_ci(platform_name, "Portable Computing Language") ||
      (device_name && (!strncmp(device_name, "pthread-", 8) ||
                       !strncmp(device_name, "cpu-", 4) ||
                       !strncmp(device_name, "basic-", 6))))
    return RETCL_VENDOR_POCL;
  /* CL_DEVICE_VENDOR_ID is the PCI vendor id on GPUs. */
  if (vendor_id == 0x10de || retcl__contains_ci(device_vendor, "NVIDIA"))
    return RETCL_VENDOR_NVIDIA;
  if (vendor_id == 0x1002 || vendor_id == 0x1022 ||
      retcl__contains_ci(device_vendor, "Advanced Micro Devices") ||
      retcl__contains_ci(device_vendor, "AuthenticAMD") || retcl__contains_ci(device_vendor, "AMD"))
    return RETCL_VENDOR_AMD;
  if (vendor_id == 0x8086 || retcl__contains_ci(device_vendor, "Intel") ||
      retcl__contains_ci(device_vendor, "GenuineIntel"))
    return RETCL_VENDOR_INTEL;
  return RETCL_VENDOR_OTHER;
}

const char *retcl__vendor_name(retcl_vendor v) {
  switch (v) {
    case RETCL_VENDOR_AMD: return "AMD";
    case RETCL_VENDOR_INTEL: return "Intel";
    case RETCL_VENDOR_NVIDIA: return "NVIDIA";
    case RETCL_VENDOR_POCL: return "PoCL";
    case RETCL_VENDOR_OTHER: break;
  }
  return "other";
}
