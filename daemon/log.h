/* log.h - the daemon's log: stderr in the foreground, syslog otherwise (OpenBSD style). */
#ifndef GUARDD_LOG_H
#define GUARDD_LOG_H

void log_init(int foreground, const char *ident);
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));	/* + errno */
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Log and exit with the sysexits status. */
void fatalx(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

#endif
