/* refutil.h - what the tests against Hugging Face reference files share (t_ref, t_mllama,
 * t_quant, t_tok, t_spmodel): ../shared or a skip, its JSON files, reading a logits file, token ids from a JSON array and
 * comparing ids with one, the deviation between two logit vectors, the top-two margin, and
 * the greedy continuation fed the reference's tokens. */
#ifndef GUARDD_TESTS_REFUTIL_H
#define GUARDD_TESTS_REFUTIL_H

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/ctx.h"
#include "core/sample.h"
#include "tap.h"
#include "util/buf.h"

/* ../shared (tap.h's shared_dir); skips the whole test when it is absent */
static inline const char *
ref_shared(void)
{
	const char *shared = shared_dir();

	if (shared == NULL)
		skip_all("../shared is absent");
	return shared;
}

/* the JSON file ../shared/reference/REL, REL a printf format and its arguments; skips the
 * whole test when ../shared is absent; NULL when the file does not load. The caller frees. */
static inline json_t *
ref_json(const char *fmt, ...)
{
	const char *shared = ref_shared();
	char rel[4096], path[4400];
	json_error_t je;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	snprintf(path, sizeof(path), "%s/reference/%s", shared, rel);
	return json_load_file(path, 0, &je);
}

/* n float32 values from path (host order, as the reference scripts write them); NULL when
 * the file is missing or shorter. The caller frees. */
static inline float *
ref_read_f32(const char *path, size_t n)
{
	FILE *fp = fopen(path, "rb");
	float *v = malloc(n * sizeof(float));

	if (fp == NULL || v == NULL || fread(v, sizeof(float), n, fp) != n) {
		if (fp)
			fclose(fp);
		free(v);
		return NULL;
	}
	fclose(fp);
	return v;
}

/* The integers of a JSON array as token ids (*n of them; one spare slot, so an empty array
 * still gives a pointer). The caller frees. */
static inline int32_t *
ref_ids(const json_t *arr, int *n)
{
	*n = (int)json_array_size(arr);
	int32_t *v = malloc(sizeof(int32_t) * (size_t)(*n + 1));

	for (int i = 0; v && i < *n; i++)
		v[i] = (int32_t)json_integer_value(json_array_get(arr, (size_t)i));
	return v;
}

/* whether v holds exactly the ids of the JSON array arr */
static inline int
ref_ids_equal(const struct tokvec *v, const json_t *arr)
{
	if (v->n != json_array_size(arr))
		return 0;
	for (size_t i = 0; i < v->n; i++)
		if (v->v[i] != json_integer_value(json_array_get(arr, i)))
			return 0;
	return 1;
}

/* max |a[i] - b[i]| over n values; 0 when either is NULL (the caller checks them) */
static inline double
ref_max_abs(const float *a, const float *b, int n)
{
	double d = 0;

	for (int i = 0; a && b && i < n; i++)
		d = fmax(d, fabs((double)a[i] - b[i]));
	return d;
}

/* the gap between the two largest logits */
static inline double
ref_margin(const float *l, int n)
{
	float a = -INFINITY, b = -INFINITY;

	for (int i = 0; i < n; i++)
		if (l[i] > a) {
			b = a;
			a = l[i];
		} else if (l[i] > b)
			b = l[i];
	return a - b;
}

/* Greedy continuation through cx's cache (sequence 0) from the logits l, fed the reference's
 * tokens (greedy, a JSON array) so every step sees the reference's context. Returns how many
 * steps in a row have the reference's token within 2 d of our top logit; *strict counts
 * those where it is our argmax by a margin over 2 d, *worst is the largest gap seen (an id
 * outside the vocabulary is an infinite gap). */
static inline int
ref_greedy_fed(struct ctx *cx, const float *l, const json_t *greedy, int nv, double d,
    int *strict, double *worst)
{
	int steps = 0, gsize = (int)json_array_size(greedy);
	struct err e;

	*strict = 0;
	*worst = 0;
	for (int g = 0; g < gsize; g++) {
		int32_t next = (int32_t)json_integer_value(json_array_get(greedy, (size_t)g));
		int32_t me = sample_greedy(l, nv);
		double gap = next >= 0 && next < nv ? (double)l[me] - l[next] : INFINITY;
		*worst = fmax(*worst, gap);
		if (gap > 2 * d)
			break;
		*strict += me == next && ref_margin(l, nv) > 2 * d;
		steps++;
		if (g + 1 < gsize && ctx_eval(cx, 0, &next, 1, &e) == -1) {
			diag("%s", e.msg);
			break;
		}
		l = ctx_logits(cx, 0);
	}
	return steps;
}

#endif
