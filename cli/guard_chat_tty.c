/* guard_chat_tty.c - guard chat's interactive session on a terminal: libedit line editing and
 * history, one turn per line, the answer streamed as the guard releases it and a verdict line
 * on stderr. The conversation carries the turns that were answered: a turn whose request or
 * answer was blocked (or that failed) is dropped whole, so the model never sees a refused
 * question nor a cut-off answer, and the next turn starts from the last good state. The
 * lines typed stay in the editing history. --image parts go with the first user message
 * that stays in the conversation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <editline/readline.h>

#include "cli/cli.h"
#include "cli/guard_chat.h"
#include "util/err.h"

/* drops the last message */
static void
chat_pop(struct chat *ch)
{
	if (ch->n > 0) {
		ch->n--;
		free(ch->msg[ch->n].text);
		free(ch->msg[ch->n].image_at);	/* --image parts go with the first message */
	}
}

int
chat_tty(struct chat_backend *b, const struct chat_cli_opts *o)
{
	struct chat ch = { .add_generation_prompt = 1 };
	struct err e;
	char *line;

	if (o->system && chat_add(&ch, CHAT_SYSTEM, o->system, strlen(o->system), &e) == -1) {
		warnx_("--system: %s", e.msg);
		return CHAT_ERROR;
	}
	using_history();
	fprintf(stderr, "guard chat: one message per line; end with Ctrl-D\n");
	while ((line = readline("> ")) != NULL) {
		size_t len = strlen(line);
		if (len == 0) {
			free(line);
			continue;
		}
		add_history(line);
		if (utf8_valid_prefix(line, len) != len ||
		    chat_add(&ch, CHAT_USER, line, len, &e) == -1) {
			warnx_("the line is not valid UTF-8 or out of memory");
			free(line);
			continue;
		}
		free(line);
		if (chat_add_cli_images(&ch, o) == -1) {
			chat_pop(&ch);
			continue;
		}
		struct chat_result r;
		int st = b->turn(b, &ch, o->json ? NULL : stdout, &r);
		if (st != CHAT_ERROR) {
			if (o->json) {
				json_t *j = chat_result_json(&r);
				char *s = json_dumps(j, JSON_COMPACT);
				printf("%s\n", s);
				free(s);
				json_decref(j);
				fflush(stdout);
			} else
				chat_print_end(&r, st, stdout);
			chat_print_summary(&r);
		}
		if (st != CHAT_ANSWERED ||
		    chat_add(&ch, CHAT_ASSISTANT, r.text.p ? r.text.p : "", r.text.n, &e) == -1)
			chat_pop(&ch);	/* the user's message goes too: see the top */
		chat_result_free(&r);
	}
	chat_free(&ch);
	return CHAT_ANSWERED;
}
