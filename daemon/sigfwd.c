/* sigfwd.c - see sigfwd.h. The handler does one async-signal-safe system call. */
#include "daemon/sigfwd.h"

#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile pid_t main_tid;

static void
forward(int sig)
{
	int saved = errno;

	syscall(SYS_tgkill, getpid(), main_tid, sig);
	errno = saved;
}

void
sigfwd_retarget(void)
{
	main_tid = (pid_t)syscall(SYS_gettid);
}

void
sigfwd_install(const sigset_t *set)
{
	struct sigaction sa;

	sigprocmask(SIG_BLOCK, set, NULL);
	sigfwd_retarget();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = forward;
	sa.sa_flags = SA_RESTART;
	sigfillset(&sa.sa_mask);
	for (int sig = 1; sig < NSIG; sig++)
		if (sigismember(set, sig) == 1)
			sigaction(sig, &sa, NULL);
}
