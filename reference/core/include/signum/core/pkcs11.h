// The PKCS#11 3.0 headers, from NSS's copy of the OASIS headers (libnss3-dev).
#pragma once

#include <pkcs11.h>  // IWYU pragma: export
