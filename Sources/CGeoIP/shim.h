#ifndef ROSTER_CGEOIP_SHIM_H
#define ROSTER_CGEOIP_SHIM_H
#include <GeoIP.h>

/* The database loaded into memory: lookups then only read it. */
static inline GeoIP *roster_geoip_open(const char *path) { return GeoIP_open(path, GEOIP_MEMORY_CACHE); }
#endif
