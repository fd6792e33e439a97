/* parent.c - guardd's privileged process. It keeps what needs privilege or must outlive a
 * crash: the listening socket, the verdict log file (reopened on SIGHUP and passed down),
 * and reading the policy files. It forks the inference child, restarts it with back-off
 * when it dies, and while no child is ready it answers each connection `busy` itself, so
 * no client hangs on a dead process. Single-threaded: poll(2) on a signalfd, the channel
 * and (while the child is down) the socket. */
#include "daemon/priv.h"

#include <errno.h>
#include <msgpack.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "daemon/chan.h"
#include "daemon/http_keys.h"
#include "daemon/log.h"
#include "daemon/server.h"
#include "daemon/sigfwd.h"
#include "daemon/vlog.h"
#include "proto/proto.h"
#include "util/mapfile.h"

#define READY_RESETS_MS 30000.0	/* a child that served this long earns a fresh back-off */
#define CANDIDATES 8

/* policy texts as the parent read them; seq numbers them for the child's reports */
struct texts {
	uint64_t seq;
	char *text[CONFIG_MAX_POLICIES];
	size_t len[CONFIG_MAX_POLICIES];
};

struct parent {
	const struct config *cfg;
	int listen_fd, activated, sigfd, log_fd;
	int http_fd[CONFIG_MAX_HTTP];	/* -1 once closed */
	int n_http_fd;
	uid_t uid;
	gid_t gid;
	pid_t child;
	struct chan *chan;
	int ready, ever_ready, restarts, backoff_ms;
	double t_ready, t_restart;	/* ms; t_restart 0: no restart pending */
	int terminating;
	double t_kill;
	int status;
	/* the texts in force (a restarted child gets these, not whatever the files hold now: a
	 * refused reload must not come back with the next crash) and those sent but not yet
	 * confirmed by the child */
	struct texts in_force, cand[CANDIDATES];
	uint64_t seq;
};

static void
texts_free(struct texts *t)
{
	priv_free_policies(t->text, CONFIG_MAX_POLICIES);
	t->seq = 0;
}

int
priv_user(const struct config *cfg, uid_t *uid, gid_t *gid, char *msg, size_t msgsize)
{
	struct passwd *pw;

	*uid = (uid_t)-1;
	*gid = (gid_t)-1;
	if (geteuid() != 0 || cfg->user == NULL)
		return 0;
	if ((pw = getpwnam(cfg->user)) == NULL) {
		snprintf(msg, msgsize, "user '%s' does not exist", cfg->user);
		return -1;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

int
priv_read_policies(const struct config *cfg, char **text, size_t *len, char *msg,
    size_t msgsize)
{
	struct err e;

	for (int i = 0; i < CONFIG_MAX_POLICIES; i++) {
		text[i] = NULL;
		len[i] = 0;
	}
	for (int i = 0; i < cfg->n_policies; i++) {
		if (cfg->policy[i].path == NULL)
			continue;
		if ((text[i] = file_read_all(cfg->policy[i].path, &len[i], 16u << 20, &e)) == NULL) {
			snprintf(msg, msgsize, "%s", e.msg);
			priv_free_policies(text, i);
			return -1;
		}
	}
	return 0;
}

char *
priv_read_keys(const struct config *cfg, size_t *len, char *msg, size_t msgsize)
{
	struct err e;
	char *t;

	*len = 0;
	msg[0] = '\0';
	if (cfg->http_keys_file == NULL)
		return NULL;
	if ((t = file_read_all(cfg->http_keys_file, len, 1u << 20, &e)) == NULL)
		snprintf(msg, msgsize, "http.keys_file: %s", e.msg);
	return t;
}

void
priv_free_policies(char **text, int n)
{
	for (int i = 0; i < n; i++) {
		free(text[i]);
		text[i] = NULL;
	}
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int
start_child(struct parent *p)
{
	struct priv_start ps = { .cfg = p->cfg, .listen_fd = p->listen_fd,
		.activated = p->activated, .log_fd = -1, .restarts = p->restarts,
		.parent_pid = getpid(), .n_http_fd = p->n_http_fd };
	char msg[1024];
	int sv[2];

	for (int i = 0; i < p->n_http_fd; i++)
		ps.http_fd[i] = p->http_fd[i];
	/* the keys as the files hold them now: a restarted child picks up a changed keys file;
	 * an unreadable one leaves the child without keys (TCP requests are then refused) */
	ps.keys = priv_read_keys(p->cfg, &ps.keys_len, msg, sizeof(msg));
	if (ps.keys == NULL && msg[0])
		log_warnx("%s", msg);

	/* the policies in force, as the child will own them (copies) */
	for (int i = 0; i < CONFIG_MAX_POLICIES; i++)
		if (p->in_force.text[i] != NULL) {
			if ((ps.text[i] = malloc(p->in_force.len[i] + 1)) == NULL) {
				priv_free_policies(ps.text, CONFIG_MAX_POLICIES);
				return -1;
			}
			memcpy(ps.text[i], p->in_force.text[i], p->in_force.len[i] + 1);
			ps.text_len[i] = p->in_force.len[i];
		}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("socketpair");
		priv_free_policies(ps.text, CONFIG_MAX_POLICIES);
		free(ps.keys);
		return -1;
	}
	pid_t pid = fork();
	if (pid == -1) {
		log_warn("fork");
		close(sv[0]);
		close(sv[1]);
		priv_free_policies(ps.text, CONFIG_MAX_POLICIES);
		free(ps.keys);
		return -1;
	}
	if (pid == 0) {
		sigfwd_retarget();
		close(sv[0]);
		close(p->sigfd);
		chan_free(p->chan);
		texts_free(&p->in_force);
		for (int i = 0; i < CANDIDATES; i++)
			texts_free(&p->cand[i]);
		ps.chan_fd = sv[1];
		if (p->log_fd != -1)
			ps.log_fd = dup(p->log_fd);
		if (p->log_fd != -1)
			close(p->log_fd);
		int code = child_main(&ps);
		config_free((struct config *)p->cfg);
		exit(code);
	}
	close(sv[1]);
	priv_free_policies(ps.text, CONFIG_MAX_POLICIES);
	free(ps.keys);
	chan_free(p->chan);
	p->chan = chan_new(sv[0]);
	p->child = pid;
	p->ready = 0;
	log_info("inference process %d started", (int)pid);
	return 0;
}

/* SIGHUP or a client's reload: the log file again (after logrotate), then the policies */
static void
reload(struct parent *p, uint64_t gen)
{
	struct err e;
	char msg[1024];

	if (p->cfg->log_path) {
		int fd = vlog_open_file(p->cfg->log_path, p->uid, p->gid, &e);
		if (fd == -1) {
			/* loud: keep writing to the old file rather than nowhere, and say so */
			log_warnx("verdict log: reopen failed, still writing to the old file: %s", e.msg);
			if (p->chan)
				chan_send(p->chan, CHAN_LOG_ERROR, e.msg, strlen(e.msg) + 1, -1);
		} else {
			if (p->chan && chan_send(p->chan, CHAN_LOG_FD, NULL, 0, fd) == -1)
				log_warn("passing the verdict log");
			close(p->log_fd);
			p->log_fd = fd;
		}
	}
	if (p->chan == NULL)
		return;	/* the next child reads the files when it starts */
	if (p->cfg->http_keys_file != NULL) {
		/* new keys replace the old only when the file reads and every key is valid */
		size_t klen;
		char *keys = priv_read_keys(p->cfg, &klen, msg, sizeof(msg));
		if (keys == NULL)
			log_warnx("reload: %s; the HTTP keys stay", msg);
		else if (http_keys_count(keys, klen) <= 0)
			log_warnx("reload: http.keys_file: %s: no key, or a key shorter than 16 bytes "
			    "or not printable; the HTTP keys stay", p->cfg->http_keys_file);
		else if (chan_send(p->chan, CHAN_KEYS, keys, klen, -1) == -1)
			log_warn("passing the HTTP keys");
		free(keys);
	}
	struct chan_policy cp[CONFIG_MAX_POLICIES];
	struct texts *t = &p->cand[p->seq % CANDIDATES];
	int n = p->cfg->n_policies;
	uint64_t seq = 0;
	texts_free(t);
	if (priv_read_policies(p->cfg, t->text, t->len, msg, sizeof(msg)) == -1) {
		log_warnx("reload: %s", msg);
		for (int i = 0; i < n; i++)
			cp[i] = (struct chan_policy){ 0, msg, strlen(msg) };
	} else {
		t->seq = seq = ++p->seq;
		for (int i = 0; i < n; i++)
			cp[i] = (struct chan_policy){ 1, t->text[i] ? t->text[i] : "", t->len[i] };
	}
	size_t plen;
	unsigned char *payload = chan_policies_encode(cp, n, &plen);
	unsigned char *msgbuf = payload ? malloc(plen + 16) : NULL;
	if (msgbuf) {
		memcpy(msgbuf, &gen, 8);
		memcpy(msgbuf + 8, &seq, 8);
		memcpy(msgbuf + 16, payload, plen);
		if (chan_send(p->chan, CHAN_POLICIES, msgbuf, plen + 16, -1) == -1)
			log_warn("passing the policies");
	}
	free(msgbuf);
	free(payload);
}

/* the child swapped in the texts of seq: they are what a restarted child gets from now on */
static void
reloaded(struct parent *p, uint64_t seq)
{
	for (int i = 0; i < CANDIDATES; i++)
		if (p->cand[i].seq == seq && seq != 0) {
			texts_free(&p->in_force);
			p->in_force = p->cand[i];
			memset(&p->cand[i], 0, sizeof(p->cand[i]));
		}
	for (int i = 0; i < CANDIDATES; i++)	/* older ones can no longer be confirmed */
		if (p->cand[i].seq != 0 && p->cand[i].seq < seq)
			texts_free(&p->cand[i]);
}

/* while no child serves: every caller gets `busy` at once rather than waiting */
static void
answer_busy(struct parent *p)
{
	msgpack_sbuffer sb;

	msgpack_sbuffer_init(&sb);
	proto_error(&sb, NULL, PROTO_BUSY, "the inference process is restarting; try again");
	for (int i = 0; i < 64; i++) {
		int fd = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd == -1)
			break;
		if (write(fd, sb.data, sb.size) < 0)
			log_debug("busy answer: %s", strerror(errno));
		close(fd);
	}
	msgpack_sbuffer_destroy(&sb);
}

/* the same for the HTTP listeners: an OpenAI-shaped 503, then the close */
static void
answer_busy_http(int lfd)
{
	static const char body[] = "{\"error\":{\"message\":\"the inference process is "
	    "restarting; try again\",\"type\":\"server_error\",\"code\":\"busy\",\"param\":null}}";
	char msg[512];
	int n = snprintf(msg, sizeof(msg), "HTTP/1.1 503 Service Unavailable\r\nContent-Type: "
	    "application/json\r\nContent-Length: %zu\r\nRetry-After: 1\r\nConnection: close\r\n\r\n%s",
	    sizeof(body) - 1, body);

	for (int i = 0; i < 64; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd == -1)
			break;
		if (write(fd, msg, (size_t)n) < 0)
			log_debug("busy answer: %s", strerror(errno));
		shutdown(fd, SHUT_WR);
		close(fd);
	}
}

static void on_chan(struct parent *p);

static void
child_exited(struct parent *p, int st)
{
	char how[64];

	/* what it said before dying (its ready message, a confirmed reload) still counts */
	p->child = 0;	/* reaped: its pid may be anyone's now */
	if (p->chan)
		on_chan(p);

	if (WIFSIGNALED(st))
		snprintf(how, sizeof(how), "was killed by signal %d", WTERMSIG(st));
	else
		snprintf(how, sizeof(how), "exited with status %d", WEXITSTATUS(st));
	p->child = 0;
	p->ready = 0;
	chan_free(p->chan);
	p->chan = NULL;
	if (p->terminating) {
		p->status = WIFEXITED(st) ? WEXITSTATUS(st) : EX_SOFTWARE;
		return;
	}
	if (!p->ever_ready) {	/* the first start failed: a configuration problem, not a crash */
		log_warnx("the inference process %s before it was ready", how);
		p->status = WIFEXITED(st) && WEXITSTATUS(st) ? WEXITSTATUS(st) : EX_SOFTWARE;
		p->terminating = 1;
		return;
	}
	if (p->t_ready > 0 && now() - p->t_ready > READY_RESETS_MS)
		p->backoff_ms = p->cfg->restart_min_ms;
	log_warnx("the inference process %s; restarting it in %d ms", how, p->backoff_ms);
	p->t_restart = now() + p->backoff_ms;
	p->backoff_ms = p->backoff_ms * 2 > p->cfg->restart_max_ms ? p->cfg->restart_max_ms :
	    p->backoff_ms * 2;
	p->t_ready = 0;
}

static void
on_signal(struct parent *p)
{
	struct signalfd_siginfo si;

	while (read(p->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGHUP:
			log_info("SIGHUP: reopening the verdict log, reloading policies");
			reload(p, 0);
			break;
		case SIGTERM:
		case SIGINT:
			if (p->terminating)
				break;
			log_info("%s: shutting down", si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
			p->terminating = 1;
			p->status = 0;
			/* no new clients from here on; the child drains the ones it has */
			if (!p->activated)
				unlink(p->cfg->listen);
			/* and no new HTTP connections: a TCP port closes once no process holds it */
			for (int i = 0; i < p->n_http_fd; i++) {
				if (p->cfg->http_listen[i][0] == '/')
					unlink(p->cfg->http_listen[i]);
				if (p->http_fd[i] != -1)
					close(p->http_fd[i]);
				p->http_fd[i] = -1;
			}
			if (p->child) {
				kill(p->child, SIGTERM);
				p->t_kill = now() + p->cfg->drain_ms + 5000.0;
			}
			break;
		case SIGCHLD: {
			int st;
			pid_t pid;
			while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
				if (pid == p->child)
					child_exited(p, st);
			break;
		}
		}
	}
}

static void
on_chan(struct parent *p)
{
	struct chan_msg m;
	int r;

	if (chan_read(p->chan) == -1)
		return;	/* SIGCHLD tells the rest */
	while ((r = chan_next(p->chan, &m)) == 1) {
		if (m.type == CHAN_READY) {
			p->ready = p->ever_ready = 1;
			p->t_ready = now();
		} else if (m.type == CHAN_RELOADED && m.len == 8) {
			uint64_t seq;
			memcpy(&seq, m.data, 8);
			reloaded(p, seq);
		} else if (m.type == CHAN_RELOAD) {
			uint64_t gen = 0;
			if (m.len == 8)
				memcpy(&gen, m.data, 8);
			reload(p, gen);
		} else
			log_warnx("unknown message %u from the inference process", m.type);
		chan_msg_free(&m);
	}
	if (r == -1) {
		log_warnx("the inference process sent garbage: stopping it");
		if (p->child > 0)
			kill(p->child, SIGKILL);
	}
}

int
parent_run(const struct config *cfg, int listen_fd, int activated, const int *http_fd,
    int n_http_fd, int foreground)
{
	struct parent p = { .cfg = cfg, .listen_fd = listen_fd, .activated = activated,
		.log_fd = -1, .backoff_ms = cfg->restart_min_ms, .n_http_fd = n_http_fd };
	char msg[1024];
	struct err e;
	sigset_t set;

	(void)foreground;
	for (int i = 0; i < n_http_fd; i++)
		p.http_fd[i] = http_fd[i];
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGCHLD);
	if ((p.sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) == -1) {
		log_warn("signalfd");
		return EX_OSERR;
	}
	if (priv_user(cfg, &p.uid, &p.gid, msg, sizeof(msg)) == -1) {
		log_warnx("%s", msg);
		close(p.sigfd);
		return EX_NOUSER;
	}
	if (cfg->log_path && (p.log_fd = vlog_open_file(cfg->log_path, p.uid, p.gid, &e)) == -1) {
		log_warnx("verdict log: %s", e.msg);
		close(p.sigfd);
		return EX_CANTCREAT;
	}
	if (priv_read_policies(cfg, p.in_force.text, p.in_force.len, msg, sizeof(msg)) == -1) {
		log_warnx("%s", msg);
		close(p.sigfd);
		if (p.log_fd != -1)
			close(p.log_fd);
		return EX_CONFIG;
	}
	if (start_child(&p) == -1)
		p.terminating = 1, p.status = EX_OSERR;
	while (p.child || (!p.terminating)) {
		struct pollfd pf[3 + CONFIG_MAX_HTTP];
		int n = 0, timeout = -1;
		pf[n++] = (struct pollfd){ p.sigfd, POLLIN, 0 };
		if (p.chan)
			pf[n++] = (struct pollfd){ chan_fd(p.chan), POLLIN, 0 };
		int busy_slot = -1;
		if (p.ever_ready && !p.ready && !p.terminating) {
			busy_slot = n;
			pf[n++] = (struct pollfd){ p.listen_fd, POLLIN, 0 };
			for (int i = 0; i < p.n_http_fd; i++)
				pf[n++] = (struct pollfd){ p.http_fd[i], POLLIN, 0 };
		}
		double t = now();
		if (p.t_restart > 0 && !p.terminating)
			timeout = p.t_restart > t ? (int)(p.t_restart - t) + 1 : 0;
		if (p.terminating && p.child)
			timeout = p.t_kill > t ? (int)(p.t_kill - t) + 1 : 0;
		if (poll(pf, (nfds_t)n, timeout) == -1 && errno != EINTR) {
			log_warn("poll");
			break;
		}
		if (pf[0].revents)
			on_signal(&p);
		if (p.chan && n > 1 && pf[1].fd == chan_fd(p.chan) && pf[1].revents)
			on_chan(&p);
		if (busy_slot >= 0 && pf[busy_slot].revents)
			answer_busy(&p);
		for (int i = 0; busy_slot >= 0 && i < p.n_http_fd; i++)
			if (pf[busy_slot + 1 + i].revents)
				answer_busy_http(p.http_fd[i]);
		t = now();
		if (p.terminating && p.child && t >= p.t_kill) {
			log_warnx("the inference process did not stop in time: killing it");
			kill(p.child, SIGKILL);
			p.t_kill = t + 60000.0;
		}
		if (!p.terminating && p.t_restart > 0 && t >= p.t_restart) {
			p.t_restart = 0;
			p.restarts++;
			if (start_child(&p) == -1)	/* try again later */
				child_exited(&p, 0);
		}
	}
	if (!activated)
		unlink(cfg->listen);
	close(listen_fd);
	for (int i = 0; i < n_http_fd; i++) {
		if (p.http_fd[i] == -1)
			continue;
		if (cfg->http_listen[i][0] == '/')
			unlink(cfg->http_listen[i]);
		close(p.http_fd[i]);
	}
	if (p.log_fd != -1)
		close(p.log_fd);
	chan_free(p.chan);
	close(p.sigfd);
	texts_free(&p.in_force);
	for (int i = 0; i < CANDIDATES; i++)
		texts_free(&p.cand[i]);
	log_info("stopped");
	return p.status;
}
