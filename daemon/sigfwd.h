/* sigfwd.h - process signals reach the main thread, whatever threads exist. Threads that a
 * library starts before main (OpenBLAS makes its pool in a constructor) do not block
 * SIGHUP or SIGTERM, so the kernel may pick one of them and the default action would kill
 * the daemon during start-up. A tiny handler on every such thread re-sends the signal to the
 * main thread, which keeps them blocked until its loop (signalfd, or libevent) takes them. */
#ifndef GUARDD_SIGFWD_H
#define GUARDD_SIGFWD_H

#include <signal.h>

/* Blocks the set on the calling (main) thread and forwards them to it from any other. */
void sigfwd_install(const sigset_t *set);
/* After fork: the child's main thread is the new target. */
void sigfwd_retarget(void);

#endif
