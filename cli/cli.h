/* cli.h - what the guard subcommands share: usage errors, model loading, input helpers. */
#ifndef GUARDD_CLI_H
#define GUARDD_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* exit statuses of every subcommand */
enum { EXIT_OK = 0, EXIT_BAD = 1, EXIT_USAGE = 2 };

struct classifier;
struct model;
struct conv_image;
struct policy;

int cmd_tokenize(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_prompt(int argc, char **argv);
/* guard prompt --chat (guard_chatprompt.c): the generator's chat prompt. */
int prompt_wants_chat(int argc, char **argv);
int cmd_prompt_chat(int argc, char **argv);
int cmd_classify(int argc, char **argv);
int cmd_filter(int argc, char **argv);
int cmd_ping(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_reload(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_quantize(int argc, char **argv);

/* Prints "guard: ..." to stderr. */
void warnx_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints the usage line of a subcommand and returns EXIT_USAGE. */
int usage_of(const char *cmd);
/* Reads all of stdin (bytes as they are). NULL on error (message printed). */
char *read_stdin(size_t *len);
/* Parses "1 2 3" or "1,2,3" into ids. -1 with a message on bad input. */
int parse_ids(const char *s, struct tokvec *out);
/* Parses a non-negative integer option; -1 with a message. */
int parse_int(const char *opt, const char *s, long min, long max, long *out);
/* A whole --image file into img (up to 64 MiB; the decoder checks what it holds); -1 with
 * a message naming the file. Free img->data. */
int cli_read_image(const char *path, struct conv_image *img);
/* Opens a model, printing the error. */
struct model *open_model(const char *path);
/* A classifier on m judging by p, threads (0: the default) and batch as the options gave
 * them (guard eval, guard replay); NULL after printing why. classifier_free frees it. */
struct classifier *new_classifier(struct model *m, const struct policy *p, long threads,
    long batch);
double now_s(void);

#endif
