#ifndef ROSTER_CSODIUM_SHIM_H
#define ROSTER_CSODIUM_SHIM_H
#include <sodium.h>
#endif
