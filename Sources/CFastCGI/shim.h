#ifndef ROSTER_CFASTCGI_SHIM_H
#define ROSTER_CFASTCGI_SHIM_H
#include <fcgiapp.h>
#include <sys/socket.h>
#include <signal.h>
#include <pthread.h>

/* The listening socket is shut down (not closed) to wake every thread blocked in accept():
   closing it would let the descriptor number be reused while libfcgi still holds it. */
static inline int roster_fcgi_shutdown_listener(int fd) {
    return shutdown(fd, SHUT_RDWR);
}

/* Blocks SIGTERM, SIGINT and SIGPIPE in the calling thread (threads created after inherit the mask),
   so only the dedicated signal thread sees them via sigwait. */
static inline int roster_block_shutdown_signals(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGPIPE);
    return pthread_sigmask(SIG_BLOCK, &set, NULL);
}

/* Waits for SIGTERM or SIGINT; returns the signal number. */
static inline int roster_wait_shutdown_signal(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    int sig = 0;
    while (sigwait(&set, &sig) != 0) {}
    return sig;
}
#endif
