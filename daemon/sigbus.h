/* sigbus.h - surviving a model file truncated under the inference process. Its weights are
 * memory-mapped; reading a page past the file's new end raises SIGBUS, which would kill
 * the process mid-request and leave its clients with a closed connection. Instead the
 * handler maps zero pages over the rest of that file's mapping (one async-signal-safe
 * mmap), so the computation runs to its end on garbage, and raises a flag: the worker
 * then answers that batch `internal` and the child exits, to be restarted by the parent
 * on the file as it is now. Faults anywhere else keep the default action. */
#ifndef GUARDD_SIGBUS_H
#define GUARDD_SIGBUS_H

/* Records the mappings of files under path (a file, or a model directory) from
 * /proc/self/maps and installs the handler. -1 if none were found. */
int sigbus_guard(const char *path);
/* Non-zero once a fault in the model was caught (then the weights are garbage). */
int sigbus_tripped(void);

#endif
