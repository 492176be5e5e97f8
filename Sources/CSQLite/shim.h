#ifndef ROSTER_CSQLITE_SHIM_H
#define ROSTER_CSQLITE_SHIM_H
#include <sqlite3.h>

/* Swift cannot call C variadic functions, and SQLITE_TRANSIENT is a cast of -1 to a function
   pointer that Swift cannot spell. These wrappers hide both. */
static inline int roster_sqlite3_config_multithread(void) {
    return sqlite3_config(SQLITE_CONFIG_MULTITHREAD);
}
/* Process-wide settings, before the first connection opens: multi-thread mode (each connection is used by one
   thread at a time, so SQLite's per-connection mutexes are waste) and no memory statistics (their global mutex
   is taken on every allocation, and 32 FastCGI threads queue on it). */
static inline int roster_sqlite3_configure(void) {
    int rc = sqlite3_config(SQLITE_CONFIG_MULTITHREAD);
    if (rc != SQLITE_OK) return rc;
    return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}
static inline int roster_sqlite3_bind_text_transient(sqlite3_stmt *stmt, int index, const char *text, int length) {
    return sqlite3_bind_text(stmt, index, text, length, SQLITE_TRANSIENT);
}
static inline int roster_sqlite3_bind_blob_transient(sqlite3_stmt *stmt, int index, const void *bytes, int length) {
    return sqlite3_bind_blob(stmt, index, bytes, length, SQLITE_TRANSIENT);
}
#endif
