/* guard_chat_sock.c - guard chat through guardd's chat op (guardd-protocol(7)): one request
 * per turn, streamed deltas written as they arrive, the final chat object as the result.
 * guardd's answers are read as untrusted bytes: framed with proto/frame.h, decoded with
 * mpjson, and checked (the id, the fields, the deltas adding up to the final text). */
#include <errno.h>
#include <jansson.h>
#include <msgpack.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/guard_chat.h"
#include "classifier/conv.h"
#include "proto/frame.h"
#include "proto/mpjson.h"
#include "proto/proto.h"

#define MAX_FRAME (64u << 20)
#define FRAME_TIMEOUT_MS 600000	/* the longest wait for guardd's next frame */
#define BUSY_FIRST_MS 10
#define BUSY_MAX_MS 1000

struct sock {
	struct chat_backend b;
	const struct chat_cli_opts *o;
	int fd;
	long id;
	struct mp_framer f;
	unsigned char *in;
	size_t n, cap, scanned;	/* bytes held; of them, fed to the framer */
};

/* The next frame as JSON; NULL after a message. */
static json_t *
next_frame(struct sock *s)
{
	struct err e;

	for (;;) {
		if (s->scanned < s->n) {
			size_t used;
			enum mp_frame fr = mp_framer_feed(&s->f, s->in + s->scanned, s->n - s->scanned,
			    &used);
			s->scanned += used;
			if (fr == MP_FRAME_OK) {
				size_t len = mp_framer_length(&s->f);
				json_t *j = mpjson_decode(s->in, len, &e);
				memmove(s->in, s->in + len, s->n - len);
				s->n -= len;
				s->scanned = 0;
				mp_framer_reset(&s->f);
				if (j == NULL)
					warnx_("guardd sent a bad answer: %s", e.msg);
				return j;
			}
			if (fr != MP_FRAME_MORE) {
				warnx_("guardd sent a bad frame (byte %zu)", mp_framer_offset(&s->f));
				return NULL;
			}
		}
		if (s->cap - s->n < 65536) {
			unsigned char *p = realloc(s->in, s->cap + 65536);
			if (p == NULL) {
				warnx_("out of memory");
				return NULL;
			}
			s->in = p;
			s->cap += 65536;
		}
		struct pollfd pf = { s->fd, POLLIN, 0 };
		int pr = poll(&pf, 1, FRAME_TIMEOUT_MS);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0) {
			if (pr == 0)
				warnx_("no answer from guardd in %d s", FRAME_TIMEOUT_MS / 1000);
			else
				warnx_("poll: %s", strerror(errno));
			return NULL;
		}
		ssize_t r = recv(s->fd, s->in + s->n, s->cap - s->n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			warnx_("guardd closed the connection%s%s", r < 0 ? ": " : "",
			    r < 0 ? strerror(errno) : "");
			return NULL;
		}
		s->n += (size_t)r;
	}
}

static void
pack_s(msgpack_packer *pk, const char *s, size_t n)
{
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

/* a message's content: its text as a string, or with images its parts in order, each image
 * a msgpack bin (guardd-protocol(7)) and the text between them; *next counts the images
 * used */
static void
pack_content(msgpack_packer *pk, const struct chat_msg *m, const struct conv_image *img,
    size_t *next)
{
	size_t n = 0, at = 0;

	if (m->n_images == 0) {
		pack_s(pk, m->text, m->len);
		return;
	}
	for (size_t k = 0; k < m->n_images; k++)
		n += 1 + (m->image_at[k] > (k ? m->image_at[k - 1] : 0));
	n += m->len > m->image_at[m->n_images - 1];
	msgpack_pack_array(pk, n);
	for (size_t k = 0; k <= m->n_images; k++) {
		size_t to = k < m->n_images ? m->image_at[k] : m->len;
		if (to > at) {
			msgpack_pack_map(pk, 2);
			pack_s(pk, "type", 4);
			pack_s(pk, "text", 4);
			pack_s(pk, "text", 4);
			pack_s(pk, m->text + at, to - at);
			at = to;
		}
		if (k == m->n_images)
			break;
		const struct conv_image *im = &img[(*next)++];
		msgpack_pack_map(pk, 2);
		pack_s(pk, "type", 4);
		pack_s(pk, "image", 5);
		pack_s(pk, "data", 4);
		msgpack_pack_bin(pk, im->len);
		msgpack_pack_bin_body(pk, im->data, im->len);
	}
}

/* the request: the options as JSON packed by proto_pack_json, the messages packed here
 * (an image's bytes are a msgpack bin, which JSON has no way to say) */
static void
pack_request(msgpack_sbuffer *sb, const json_t *q, const struct chat *ch,
    const struct conv_image *img)
{
	msgpack_packer pk;
	const char *k;
	json_t *v;
	size_t next = 0;

	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, json_object_size(q) + 1);
	json_object_foreach((json_t *)q, k, v) {
		pack_s(&pk, k, strlen(k));
		proto_pack_json(sb, v);
	}
	pack_s(&pk, "messages", 8);
	msgpack_pack_array(&pk, ch->n);
	for (size_t i = 0; i < ch->n; i++) {
		const char *role = chat_role_name(ch->msg[i].role);
		msgpack_pack_map(&pk, 2);
		pack_s(&pk, "role", 4);
		pack_s(&pk, role, strlen(role));
		pack_s(&pk, "content", 7);
		pack_content(&pk, &ch->msg[i], img, &next);
	}
}

static int
send_request(struct sock *s, const struct chat *ch, int stream)
{
	const struct chat_cli_opts *o = s->o;
	json_t *q = json_object();
	msgpack_sbuffer sb;
	int rc = 0;

	json_object_set_new(q, "id", json_integer(++s->id));
	json_object_set_new(q, "op", json_string("chat"));
	json_object_set_new(q, "stream", json_boolean(stream));
	if (o->policy)
		json_object_set_new(q, "policy", json_string(o->policy));
	if (o->set_max)
		json_object_set_new(q, "max_tokens", json_integer(o->max_tokens));
	if (o->set_temp)
		json_object_set_new(q, "temperature", json_real(o->sp.temperature));
	if (o->set_top_k)
		json_object_set_new(q, "top_k", json_integer(o->sp.top_k));
	if (o->set_top_p)
		json_object_set_new(q, "top_p", json_real(o->sp.top_p));
	if (o->set_min_p)
		json_object_set_new(q, "min_p", json_real(o->sp.min_p));
	if (o->set_repeat)
		json_object_set_new(q, "repeat_penalty", json_real(o->sp.repeat_penalty));
	if (o->set_seed)
		json_object_set_new(q, "seed", json_integer((json_int_t)o->sp.seed));
	if (o->n_stop > 0) {
		json_t *a = json_array();
		for (size_t i = 0; i < o->n_stop; i++)
			json_array_append_new(a, json_string(o->stop[i]));
		json_object_set_new(q, "stop", a);
	}
	msgpack_sbuffer_init(&sb);
	pack_request(&sb, q, ch, o->img);
	for (size_t off = 0; off < sb.size;) {
		ssize_t w = send(s->fd, sb.data + off, sb.size - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			warnx_("send: %s", strerror(errno));
			rc = -1;
			break;
		}
		off += (size_t)w;
	}
	msgpack_sbuffer_destroy(&sb);
	json_decref(q);
	return rc;
}

static int
busy_retries(void)
{
	const char *v = getenv("GUARD_BUSY_RETRIES");
	char *end;
	long n = v ? strtol(v, &end, 10) : 8;

	return v && (*v == '\0' || *end != '\0' || n < 0 || n > 100) ? 8 : (int)n;
}

static long
int_field(const json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return json_is_integer(v) && json_integer_value(v) >= 0 ? (long)json_integer_value(v) : -1;
}

/* The final chat object into r; -1 after a message when it is not what the protocol says. */
static int
take_final(const json_t *c, struct chat_result *r, int streamed)
{
	static const char *const reasons[] = { "stop", "length", "content_filter" };
	const char *fr = json_string_value(json_object_get(c, "finish_reason"));
	json_t *text = json_object_get(c, "text"), *u = json_object_get(c, "usage");
	json_t *rq = json_object_get(c, "request_verdict"), *rs = json_object_get(c, "response_verdict");

	r->finish = NULL;
	for (int i = 0; i < 3 && fr; i++)
		if (strcmp(fr, reasons[i]) == 0)
			r->finish = reasons[i];
	if (!json_is_object(c) || r->finish == NULL || !json_is_string(text) ||
	    !json_is_object(rq) || !(json_is_object(rs) || json_is_null(rs)) || !json_is_object(u) ||
	    int_field(u, "prompt_tokens") < 0 || int_field(u, "completion_tokens") < 0) {
		warnx_("guardd's chat answer lacks finish_reason, text, verdicts or usage");
		return -1;
	}
	if (streamed && (json_string_length(text) != r->text.n ||
	    memcmp(json_string_value(text), r->text.p ? r->text.p : "", r->text.n) != 0)) {
		warnx_("guardd's final text is not what its deltas said");
		return -1;
	}
	if (!streamed) {
		buf_free(&r->text);
		if (buf_add(&r->text, json_string_value(text), json_string_length(text)) == -1)
			return -1;
	}
	if (strcmp(r->finish, "content_filter") == 0) {
		const char *ref = json_string_value(json_object_get(c, "refusal"));
		if (ref == NULL) {
			warnx_("guardd's content_filter answer has no refusal");
			return -1;
		}
		r->refusal = strdup(ref);
	}
	r->request_verdict = json_incref(rq);
	r->response_verdict = json_is_null(rs) ? NULL : json_incref(rs);
	r->prompt_tokens = int_field(u, "prompt_tokens");
	r->completion_tokens = int_field(u, "completion_tokens");
	r->checks = int_field(c, "checks") > 0 ? int_field(c, "checks") : 0;
	r->raw = json_incref((json_t *)c);
	return 0;
}

static int
sock_turn(struct chat_backend *b, const struct chat *ch, FILE *out, struct chat_result *r)
{
	struct sock *s = (struct sock *)b;
	int tries = 0, max_tries = busy_retries(), stream = out != NULL;

	memset(r, 0, sizeof(*r));
	if (send_request(s, ch, stream) == -1)
		return CHAT_ERROR;
	for (;;) {
		json_t *a = next_frame(s), *d, *c;
		if (a == NULL)
			return CHAT_ERROR;
		if (json_integer_value(json_object_get(a, "id")) != s->id ||
		    !json_is_integer(json_object_get(a, "id"))) {
			warnx_("guardd answered another request's id");
			json_decref(a);
			return CHAT_ERROR;
		}
		if (!json_is_true(json_object_get(a, "ok"))) {
			json_t *e = json_object_get(a, "error");
			const char *code = json_string_value(json_object_get(e, "code"));
			const char *msg = json_string_value(json_object_get(e, "message"));
			if (code && strcmp(code, "busy") == 0 && r->text.n == 0 && tries < max_tries) {
				/* the queue is full: back off, doubling, and ask again */
				long ms = BUSY_FIRST_MS << tries;
				struct timespec ts = { 0, 0 };
				ms = ms < BUSY_MAX_MS ? ms : BUSY_MAX_MS;
				ts.tv_sec = ms / 1000;
				ts.tv_nsec = (ms % 1000) * 1000000L;
				nanosleep(&ts, NULL);
				tries++;
				json_decref(a);
				if (send_request(s, ch, stream) == -1)
					return CHAT_ERROR;
				continue;
			}
			warnx_("guardd: %s: %s", code ? code : "?", msg ? msg : "");
			json_decref(a);
			return CHAT_ERROR;
		}
		if ((d = json_object_get(a, "delta")) != NULL) {
			json_t *t = json_object_get(d, "text");
			if (!stream || !json_is_string(t)) {
				warnx_("guardd sent a delta %s", stream ? "without text" : "unasked");
				json_decref(a);
				return CHAT_ERROR;
			}
			fwrite(json_string_value(t), 1, json_string_length(t), out);
			fflush(out);
			buf_add(&r->text, json_string_value(t), json_string_length(t));
			json_decref(a);
			continue;
		}
		c = json_object_get(a, "chat");
		int rc = take_final(c, r, stream);
		json_decref(a);
		if (rc == -1)
			return CHAT_ERROR;
		return strcmp(r->finish, "content_filter") == 0 ? CHAT_BLOCKED : CHAT_ANSWERED;
	}
}

static void
sock_free(struct chat_backend *b)
{
	struct sock *s = (struct sock *)b;

	if (s == NULL)
		return;
	if (s->fd != -1)
		close(s->fd);
	free(s->in);
	free(s);
}

struct chat_backend *
chat_sock_new(const struct chat_cli_opts *o)
{
	struct sock *s = calloc(1, sizeof(*s));
	struct sockaddr_un sun;

	if (s == NULL) {
		warnx_("out of memory");
		return NULL;
	}
	s->b.turn = sock_turn;
	s->b.free = sock_free;
	s->o = o;
	mp_framer_init(&s->f, MAX_FRAME);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(o->socket) >= sizeof(sun.sun_path)) {
		warnx_("%s: socket path too long", o->socket);
		s->fd = -1;
		goto fail;
	}
	memcpy(sun.sun_path, o->socket, strlen(o->socket) + 1);
	if ((s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(s->fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		warnx_("%s: %s", o->socket, strerror(errno));
		goto fail;
	}
	return &s->b;
fail:
	sock_free(&s->b);
	return NULL;
}
