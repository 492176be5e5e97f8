#ifndef ROSTER_CPOSTGRES_SHIM_H
#define ROSTER_CPOSTGRES_SHIM_H
#include <libpq-fe.h>
#endif
