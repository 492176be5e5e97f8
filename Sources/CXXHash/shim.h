#ifndef ROSTER_CXXHASH_SHIM_H
#define ROSTER_CXXHASH_SHIM_H
#include <xxhash.h>
#endif
