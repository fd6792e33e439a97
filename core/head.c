/* head.c - pruned output heads: a head with fewer rows than the vocabulary (Llama Guard 3
 * 1B-INT4 keeps 20) comes with the token id of each row. Both loaders read the ids from their
 * own place (GGUF metadata, config.json) and validate them here, so the rules and messages
 * are the same; forward.c spreads the head's rows over a full-vocabulary logit row. */
#include "core/model_int.h"

#include <stdio.h>
#include <stdlib.h>

int
head_map_set(struct model *m, const char *where, const char *key, const int64_t *ids,
    size_t n, int64_t off, struct err *e)
{
	char at[48] = "";
	int64_t rows = m->output.rows, nv = m->hp.n_vocab;
	unsigned char *seen;
	int32_t *out;

	if ((int64_t)n != rows)
		return err_set(e, "%s: %s has %zu token ids, the output head has %lld rows (one id "
		    "per row)", where, key, n, (long long)rows);
	if ((seen = calloc(nv > 0 ? (size_t)nv : 1, 1)) == NULL ||
	    (out = reallocarray(NULL, n ? n : 1, sizeof(*out))) == NULL) {
		free(seen);
		return err_set(e, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		if (off >= 0)
			snprintf(at, sizeof(at), " (offset %lld)", (long long)(off + 4 * (int64_t)i));
		if (ids[i] < 0 || ids[i] >= nv) {
			err_set(e, "%s: %s[%zu]%s: token id %lld is outside the vocabulary (0..%lld)",
			    where, key, i, at, (long long)ids[i], (long long)nv - 1);
			goto fail;
		}
		if (seen[ids[i]]) {
			size_t j = 0;
			while (ids[j] != ids[i])
				j++;
			err_set(e, "%s: %s[%zu]%s: token id %lld is already row %zu's (each token has "
			    "at most one row)", where, key, i, at, (long long)ids[i], j);
			goto fail;
		}
		seen[ids[i]] = 1;
		out[i] = (int32_t)ids[i];
	}
	free(seen);
	m->out_ids = out;
	return 0;
fail:
	free(seen);
	free(out);
	return -1;
}

int
model_head(const struct model *m, const int32_t **ids)
{
	if (ids != NULL)
		*ids = m->out_ids;
	return (int)m->output.rows;
}
