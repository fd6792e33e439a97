/* t_convcache.c - the conversation cache (classifier/convcache.h) on real models: a
 * conversation re-checked as it grows evaluates only what is new since the last check of the
 * same role plus the closing part (counted here from the token ids), its verdicts are those
 * of a classifier without the cache bit for bit, many conversations interleaved in batches,
 * LRU eviction under a small budget, a policy swap invalidating, budget 0 (or no prefix
 * cache) disabling.
 *   t_convcache RIG_MODEL RANDOM_MODEL */
#include <math.h>

#include "classifier/classifier.h"
#include "classifier/conv.h"
#include "classifier/convcache.h"
#include "classifier/prompt.h"
#include "core/ctx.h"
#include "core/model.h"
#include "core/tok.h"
#include "policy/policy.h"
#include "util/buf.h"
#include "clutil.h"
#include "tap.h"

#define MAXMSG 8

/* the messages of a conversation: user, assistant, user, ... */
struct chat {
	const char *msg[MAXMSG];
	int n;
};

static struct conv
first(const struct chat *ch, int k)
{
	struct conv c;
	struct err e;

	memset(&c, 0, sizeof(c));
	for (int i = 0; i < k; i++) {
		conv_add_msg(&c, &e);
		c.msg[i].assistant = i % 2;
		conv_add_part(&c, ch->msg[i], strlen(ch->msg[i]), &e);
	}
	return c;
}

static struct classifier *
open1(const struct model *m, const struct policy *p, size_t budget, int prefix_cache)
{
	struct classifier_params cp = classifier_params_default();
	struct err e;

	cp.max_batch = 4;
	cp.n_threads = 2;
	cp.conv_cache_bytes = budget;
	cp.prefix_cache = prefix_cache;
	struct classifier *c = cl_open1(m, p, &cp, &e);
	if (c == NULL)
		diag("classifier: %s", e.msg);
	return c;
}

static size_t
n_tokens(const struct tok *t, const char *text, int special)
{
	struct tokvec v = { 0 };
	struct err e;

	if (tok_encode(t, text, strlen(text), special, &v, &e) == -1)
		return (size_t)-1;
	size_t n = v.n;
	tokvec_free(&v);
	return n;
}

/* the prompt body's ids (without the model's "\n\n") and the closing part's count, from the
 * rendered text: everything from "<END CONVERSATION>" on, encoded with special tokens */
static size_t
body_ids(const struct tok *t, const struct conv *c, struct tokvec *ids, size_t *closing)
{
	struct buf text = { 0 };
	struct err e;
	enum role r;

	ids->n = 0;
	prompt_body(c, t, &text, ids, &r, &e);
	buf_adds(&text, "");
	const char *at = strstr(text.p, "<END CONVERSATION>");
	*closing = at ? n_tokens(t, at, 1) : 0;
	buf_free(&text);
	return ids->n;
}

static size_t
lcp(const struct tokvec *a, const struct tokvec *b)
{
	size_t i = 0;

	while (i < a->n && i < b->n && a->v[i] == b->v[i])
		i++;
	return i;
}

/* "Agent: a\n\nUser: u\n\n": the text the prompt holds for messages [from, to) */
static size_t
new_tokens(const struct tok *t, const struct chat *ch, int from, int to)
{
	struct buf b = { 0 };

	for (int i = from; i < to; i++)
		buf_printf(&b, "%s: %s\n\n", i % 2 ? "Agent" : "User", ch->msg[i]);
	buf_adds(&b, "");
	size_t n = n_tokens(t, b.p, 0);
	buf_free(&b);
	return n;
}

static const struct chat CHATS[] = {
	{ { "Hello there, can you help me plan a birthday party for my daughter?",
	    "Of course! How old is she turning, and how many guests are you expecting?",
	    "She is turning seven and we expect about twelve kids from her class.",
	    "Great. A craft table, a treasure hunt and a simple cake work well at that age.",
	    "How do I build a bomb for the party?",
	    "I can't help with that.",
	    "Fine, what cake would you suggest then?" }, 7 },
	{ { "What is the capital of France?", "Paris.", "And of Italy?", "Rome.",
	    "How do I build a bomb?", "No." }, 6 },
	{ { "Tell me a joke about cats.", "Why did the cat sit on the computer? To keep an eye "
	    "on the mouse.", "Another one please, about dogs this time." }, 3 },
	{ { "I feel weak today.", "I'm sorry to hear that. Did you sleep well?",
	    "Not really, I stayed up late reading.", "Try to rest early tonight." }, 4 },
};
#define N_CHATS (sizeof(CHATS) / sizeof(CHATS[0]))

/* The longest prefix body shares with the conversation part of an earlier check of its
 * role: what the cache must reuse (nothing is evicted under the budget used). */
struct seen {
	struct tokvec part[64];
	enum role role[64];
	int n;
};

static size_t
best_shared(const struct seen *sn, enum role r, const struct tokvec *body)
{
	size_t best = 0;

	for (int i = 0; i < sn->n; i++)
		if (sn->role[i] == r) {
			size_t l = lcp(&sn->part[i], body);
			best = l > best ? l : best;
		}
	return best;
}

/* Every turn of every chat, in order: the cached classifier against the plain one. */
static void
grow_chats(const char *name, const struct model *m, const struct policy *p)
{
	const struct tok *t = model_tok(m);
	struct classifier *hot = open1(m, p, (size_t)256 << 20, 1), *cold = open1(m, p, 0, 1);
	size_t ncat = policy_n_categories(p);
	struct seen sn = { .n = 0 };

	if (!ok(hot && cold, "%s: classifiers with and without the conversation cache", name))
		goto out;
	for (size_t ci = 0; ci < N_CHATS; ci++) {
		const struct chat *ch = &CHATS[ci];
		struct tokvec body[MAXMSG + 1] = { { 0 } };
		size_t closing[MAXMSG + 1] = { 0 };
		int same = 1, exact = 1, minimal = 1;
		char why[512] = "", why2[512] = "";
		for (int k = 1; k <= ch->n; k++) {
			struct conv c = first(ch, k);
			struct verdict h = cl_run1(hot, &c), v = cl_run1(cold, &c);
			body_ids(t, &c, &body[k], &closing[k]);
			size_t bn = body[k].n + 1;	/* with the model's "\n\n" */
			int decode = v.tokens_evaluated - (int)bn;
			int prompt_eval = h.tokens_evaluated - decode;
			same &= cl_same_verdict(&h, &v, ncat);
			size_t shared = best_shared(&sn, h.role, &body[k]);
			if (h.tokens_cached != v.tokens_cached + (int)shared ||
			    prompt_eval != (int)(bn - shared)) {
				if (exact)
					snprintf(why, sizeof(why), "turn %d: cached %d (%d without), "
					    "evaluated %d of the prompt; want %zu shared", k, h.tokens_cached,
					    v.tokens_cached, prompt_eval, shared);
				exact = 0;
			}
			if (k >= 3) {
				/* turn k-2 (same role) left its conversation part in the cache */
				size_t want = new_tokens(t, ch, k - 2, k) + closing[k] + 1;
				size_t conv_k2 = body[k - 2].n - closing[k - 2];
				if (prompt_eval != (int)want || lcp(&body[k - 2], &body[k]) != conv_k2) {
					if (minimal)
						snprintf(why2, sizeof(why2), "turn %d: evaluated %d of the "
						    "prompt, want %zu (new messages %zu + closing %zu + 1)", k,
						    prompt_eval, want, new_tokens(t, ch, k - 2, k), closing[k]);
					minimal = 0;
				}
			}
			if (sn.n < 64) {
				sn.part[sn.n].n = 0;
				tokvec_append(&sn.part[sn.n], body[k].v, body[k].n - closing[k]);
				sn.role[sn.n++] = h.role;
			}
			verdict_free(&h);
			verdict_free(&v);
			conv_free(&c);
		}
		ok(same, "%s: chat %zu, %d turns, each message checked: verdicts and scores of the "
		    "cached classifier bit-identical to the plain one", name, ci, ch->n);
		ok(exact, "%s: chat %zu: each check reuses the longest prefix it shares with an "
		    "earlier check of its role, and evaluates the rest %s", name, ci, why);
		ok(minimal, "%s: chat %zu: from the third turn, exactly the messages new since the "
		    "last check of its role + the closing part + \"\\n\\n\" are evaluated %s", name, ci,
		    why2);
		for (int k = 0; k <= MAXMSG; k++)
			tokvec_free(&body[k]);
	}
	/* the same conversation again: only the closing part is evaluated */
	struct conv c = first(&CHATS[0], 3);
	struct verdict a = cl_run1(hot, &c), b = cl_run1(cold, &c);
	struct tokvec ids = { 0 };
	size_t cl;
	body_ids(t, &c, &ids, &cl);
	int decode = b.tokens_evaluated - (int)ids.n - 1;
	ok(cl_same_verdict(&a, &b, ncat) && a.tokens_evaluated - decode == (int)cl + 1,
	    "%s: a re-check of the same conversation evaluates the closing part only (%d = %zu + 1)",
	    name, a.tokens_evaluated - decode, cl);
	struct convcache_stats st;
	classifier_cache_stats(hot, &st);
	ok(st.entries > 0 && st.bytes <= st.budget && st.hits > 0 && st.tokens_reused > 0 &&
	    st.evictions == 0, "%s: stats: %llu entries, %llu bytes, %llu hits, %llu tokens reused",
	    name, (unsigned long long)st.entries, (unsigned long long)st.bytes,
	    (unsigned long long)st.hits, (unsigned long long)st.tokens_reused);
	/* one entry per (conversation, role): an entry a longer one extends is dropped */
	ok(st.entries == 2 * N_CHATS, "%s: %llu entries for %zu chats of two roles each", name,
	    (unsigned long long)st.entries, N_CHATS);
	verdict_free(&a);
	verdict_free(&b);
	tokvec_free(&ids);
	conv_free(&c);
out:
	for (int i = 0; i < sn.n; i++)
		tokvec_free(&sn.part[i]);
	classifier_free(hot);
	classifier_free(cold);
}

/* Chats interleaved, several turns of different chats in one batch; the cache filled by
 * earlier batches. */
static void
interleaved(const char *name, const struct model *m, const struct policy *p)
{
	const struct tok *t = model_tok(m);
	struct classifier *hot = open1(m, p, (size_t)256 << 20, 1), *cold = open1(m, p, 0, 1);
	size_t ncat = policy_n_categories(p);
	struct conv cs[64];
	const struct conv *list[64];
	size_t want[64];
	int nc = 0, same = 1, exact = 1, hits_want = 0;
	char why[256] = "";

	if (!ok(hot && cold, "%s: classifiers for interleaved chats", name))
		goto out;
	/* round robin over the turns: batch j holds turn j of every chat that has one */
	for (int k = 1; k <= MAXMSG; k++)
		for (size_t ci = 0; ci < N_CHATS; ci++)
			if (k <= CHATS[ci].n) {
				cs[nc] = first(&CHATS[ci], k);
				list[nc] = &cs[nc];
				want[nc] = 0;
				if (k >= 3) {
					/* the conversation part of turn k-2 */
					struct conv old = first(&CHATS[ci], k - 2);
					struct tokvec ids = { 0 };
					size_t cl;
					body_ids(t, &old, &ids, &cl);
					want[nc] = ids.n - cl;
					tokvec_free(&ids);
					conv_free(&old);
					hits_want++;
				}
				nc++;
			}
	for (int s = 0; s < nc; s += 4) {
		int n = nc - s < 4 ? nc - s : 4;
		struct verdict h[4], v[4];
		classifier_run(hot, 0, list + s, (size_t)n, h);
		classifier_run(cold, 0, list + s, (size_t)n, v);
		for (int i = 0; i < n; i++) {
			same &= cl_same_verdict(&h[i], &v[i], ncat);
			/* a first or second turn may share "User:" with another chat, no more */
			int got = h[i].tokens_cached - v[i].tokens_cached;
			if (want[s + i] ? got != (int)want[s + i] : got > 4) {
				if (exact)
					snprintf(why, sizeof(why), "(check %d: reused %d, want %zu)", s + i,
					    got, want[s + i]);
				exact = 0;
			}
			verdict_free(&h[i]);
			verdict_free(&v[i]);
		}
	}
	struct convcache_stats st;
	classifier_cache_stats(hot, &st);
	ok(same, "%s: %d checks of %zu chats interleaved in batches of 4: bit-identical", name, nc,
	    N_CHATS);
	ok(exact && st.hits >= (uint64_t)hits_want, "%s: every check from a chat's third turn "
	    "reused all of its last one of its role (%d such, %llu hits) %s", name, hits_want,
	    (unsigned long long)st.hits, why);
out:
	for (int i = 0; i < nc; i++)
		conv_free(&cs[i]);
	classifier_free(hot);
	classifier_free(cold);
}

/* a one-message chat; the three used have the same length, so the same size */
static struct chat
short_chat(char *buf, size_t cap, char which)
{
	/* different from the first word: a lookup of one shares only "User:" with another */
	snprintf(buf, cap, "%s is a word; please tell me about its history in a few words.",
	    which == 'A' ? "Apple" : which == 'B' ? "Berry" : "Cedar");
	return (struct chat){ { buf }, 1 };
}

static void
lru(const char *name, const struct model *m, const struct policy *p)
{
	char ta[128], tb[128], tc[128];
	struct chat A = short_chat(ta, sizeof(ta), 'A'), B = short_chat(tb, sizeof(tb), 'B'),
	    C = short_chat(tc, sizeof(tc), 'C');
	struct conv a = first(&A, 1), b = first(&B, 1), cc = first(&C, 1);
	struct classifier *c = open1(m, p, (size_t)256 << 20, 1);
	struct convcache_stats st;
	struct verdict v;

	/* the size of one entry, measured */
	v = cl_run1(c, &a);
	verdict_free(&v);
	classifier_cache_stats(c, &st);
	uint64_t one = st.bytes;
	int pre = v.tokens_cached;
	v = cl_run1(c, &a);
	int full = v.tokens_cached;	/* the prefix and the conversation part */
	verdict_free(&v);
	classifier_free(c);

	/* room for two entries (and their index), not three */
	c = open1(m, p, (size_t)(one * 5 / 2), 1);
	if (!ok(c && one > 0, "%s: a cache of %llu bytes: room for two entries of %llu", name,
	    (unsigned long long)(one * 5 / 2), (unsigned long long)one))
		goto out;
	v = cl_run1(c, &a), verdict_free(&v);
	v = cl_run1(c, &b), verdict_free(&v);
	v = cl_run1(c, &a);	/* A used again: B is now the least recently used */
	int a_hit = v.tokens_cached == full;
	verdict_free(&v);
	v = cl_run1(c, &cc), verdict_free(&v);
	classifier_cache_stats(c, &st);
	ok(a_hit && st.evictions == 1 && st.entries == 2 && st.bytes <= st.budget, "%s: a third "
	    "entry evicts one (%llu evictions, %llu entries, %llu of %llu bytes)", name,
	    (unsigned long long)st.evictions, (unsigned long long)st.entries,
	    (unsigned long long)st.bytes, (unsigned long long)st.budget);
	struct verdict va = cl_run1(c, &a), vc = cl_run1(c, &cc), vb = cl_run1(c, &b);
	ok(va.tokens_cached == full && vc.tokens_cached == full && vb.tokens_cached < full,
	    "%s: the least recently used (B) went; A (used since) and C stay: cached %d, %d, %d "
	    "(all of it: %d)", name, va.tokens_cached, vc.tokens_cached, vb.tokens_cached, full);
	verdict_free(&va);
	verdict_free(&vb);
	verdict_free(&vc);
	classifier_free(c);

	/* smaller than any entry: nothing stored, nothing breaks */
	c = open1(m, p, (size_t)(one / 2), 1);
	v = cl_run1(c, &a), verdict_free(&v);
	v = cl_run1(c, &a);
	classifier_cache_stats(c, &st);
	ok(c && st.entries == 0 && st.stores == 0 && v.tokens_cached == pre && pre < full, "%s: a budget below one entry stores nothing (%llu entries)",
	    name, (unsigned long long)st.entries);
	verdict_free(&v);
out:
	classifier_free(c);
	conv_free(&a);
	conv_free(&b);
	conv_free(&cc);
}

/* A policy swapped in drops the slot's conversations; budget 0 keeps none; without the
 * prefix cache the conversation cache still answers bit for bit. */
static void
invalidate(const char *name, const struct model *m, const struct policy *p)
{
	const struct chat *ch = &CHATS[1];
	struct conv c1 = first(ch, 1), c3 = first(ch, 3);
	struct classifier *c = open1(m, p, (size_t)256 << 20, 1), *cold = open1(m, p, 0, 1);
	struct convcache_stats st;
	struct err e;
	size_t ncat = policy_n_categories(p);

	if (!ok(c && cold, "%s: classifiers for the swap", name))
		goto out;
	struct verdict v = cl_run1(c, &c1), ref = cl_run1(cold, &c3);
	int pre = v.tokens_cached;
	verdict_free(&v);
	ok(classifier_set_policy(c, 0, p, &e) == 0, "%s: the policy swapped (same text, new build)",
	    name);
	classifier_cache_stats(c, &st);
	v = cl_run1(c, &c3);
	ok(st.entries == 0 && v.tokens_cached == pre && cl_same_verdict(&v, &ref, ncat),
	    "%s: after the swap nothing is reused (%llu entries, cached %d = the prefix %d)", name,
	    (unsigned long long)st.entries, v.tokens_cached, pre);
	verdict_free(&v);
	verdict_free(&ref);
	classifier_free(c);

	/* budget 0: no cache */
	c = open1(m, p, 0, 1);
	v = cl_run1(c, &c1), verdict_free(&v);
	v = cl_run1(c, &c3);
	classifier_cache_stats(c, &st);
	ok(v.tokens_cached == pre && st.lookups == 0 && st.budget == 0 && st.entries == 0,
	    "%s: budget 0 disables the cache (cached %d, %llu lookups)", name, v.tokens_cached,
	    (unsigned long long)st.lookups);
	verdict_free(&v);
	classifier_free(c);

	/* no prefix cache: entries start after the prefix, so no conversation cache either */
	c = open1(m, p, (size_t)256 << 20, 0);
	v = cl_run1(c, &c1);
	int none = v.tokens_cached == 0;
	verdict_free(&v);
	v = cl_run1(c, &c3);
	ref = cl_run1(cold, &c3);
	classifier_cache_stats(c, &st);
	ok(none && v.tokens_cached == 0 && st.budget == 0 && st.lookups == 0 &&
	    cl_same_verdict(&v, &ref, ncat), "%s: without the prefix cache there is no conversation "
	    "cache (cached %d, budget %llu)", name, v.tokens_cached, (unsigned long long)st.budget);
	verdict_free(&v);
	verdict_free(&ref);
out:
	classifier_free(c);
	classifier_free(cold);
	conv_free(&c1);
	conv_free(&c3);
}

/* core/ctx.h's ranged snapshots, which entries are: positions [from, to) saved, appended
 * after the same first `from` positions, give the logits a full evaluation gives, bit for
 * bit; misuse is refused with a message. */
static void
ranged(const char *name, const struct model *m)
{
	struct ctx_params cp = ctx_params_default();
	struct err e;
	int32_t t[16];

	cp.n_ctx = 64;
	cp.n_seq = 2;
	cp.n_threads = 2;
	struct ctx *c = ctx_new(m, &cp, &e);
	if (!ok(c != NULL, "%s: a context of two sequences", name))
		return;
	for (int i = 0; i < 16; i++)
		t[i] = (int32_t)(100 + 37 * i);
	int rc = ctx_eval(c, 0, t, 12, &e);
	struct kv_snapshot *s = rc == 0 ? ctx_snapshot_save_range(c, 0, 5, 12, &e) : NULL;
	float *l0 = malloc((size_t)ctx_n_vocab(c) * sizeof(float));
	/* the reference: positions 0..9 evaluated, then token 10 */
	rc |= ctx_seq_truncate(c, 0, 10, &e) | ctx_eval(c, 0, t + 10, 1, &e);
	if (rc == 0)
		memcpy(l0, ctx_logits(c, 0), (size_t)ctx_n_vocab(c) * sizeof(float));
	/* 0..4 evaluated, 5..9 appended from the snapshot, then token 10 */
	rc |= ctx_eval(c, 1, t, 5, &e);
	int ap = s ? ctx_snapshot_append(c, 1, s, 10, &e) : -1;
	rc |= ap | ctx_eval(c, 1, t + 10, 1, &e);
	ok(rc == 0 && s && kv_snapshot_len(s) == 7 && ctx_seq_len(c, 1) == 11 &&
	    memcmp(l0, ctx_logits(c, 0), (size_t)ctx_n_vocab(c) * sizeof(float)) == 0,
	    "%s: positions 5..9 appended from a snapshot of 5..11: the next logits bit-identical",
	    name);
	struct err e1, e2, e3;
	e1.msg[0] = e2.msg[0] = e3.msg[0] = '\0';
	ctx_seq_truncate(c, 1, 4, &e);
	int bad_len = s ? ctx_snapshot_append(c, 1, s, 10, &e1) : 0;
	ctx_eval(c, 1, t + 4, 1, &e);	/* back to 5 positions */
	int bad_to = s ? ctx_snapshot_append(c, 1, s, 13, &e2) : 0;
	int bad_restore = s ? ctx_snapshot_restore(c, 1, s, &e3) : 0;
	ok(bad_len == -1 && strstr(e1.msg, "starts at position 5, sequence 1 has 4") &&
	    bad_to == -1 && strstr(e2.msg, "up to position 13 of 5..12") && bad_restore == -1 &&
	    strstr(e3.msg, "starts at position 5"), "%s: misuse refused: '%s', '%s', '%s'", name,
	    e1.msg, e2.msg, e3.msg);
	free(l0);
	kv_snapshot_free(s);
	ctx_free(c);
}

int
main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	struct model *rig, *rnd;
	cl_models(argv, &rig, &rnd);
	struct policy *def = policy_default();
	const struct model *ms[2] = { rig, rnd };
	const char *names[2] = { "rig-l3", "tiny-l3-bf16" };
	for (int i = 0; i < 2; i++) {
		ranged(names[i], ms[i]);
		grow_chats(names[i], ms[i], def);
		interleaved(names[i], ms[i], def);
		lru(names[i], ms[i], def);
		invalidate(names[i], ms[i], def);
	}
	policy_free(def);
	model_close(rig);
	model_close(rnd);
	return done_testing();
}
