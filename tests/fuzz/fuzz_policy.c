/* fuzz_policy.c - the policy YAML loader, and the prompt built from what it accepts. */
#include <stdint.h>

#include "classifier/conv.h"
#include "classifier/prompt.h"
#include "policy/policy.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct err e;
	struct policy *p = policy_parse((const char *)data, size, "fuzz.yaml", &e);

	if (p != NULL) {
		struct buf t = { 0 };
		struct tokvec ids = { 0 };
		prompt_prefix(p, ROLE_REQUEST, NULL, &t, &ids, &e);
		prompt_prefix(p, ROLE_RESPONSE, NULL, &t, &ids, &e);
		buf_free(&t);
		tokvec_free(&ids);
	}
	policy_free(p);
	return 0;
}
