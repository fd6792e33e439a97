/* fuzz_imgprep.c - preprocessor_config.json's parser (imgprep_config_parse, which reads the
 * copy an mllama GGUF stores) on arbitrary bytes. A failure without a message, or a config
 * accepted with a field outside what the parser promises, aborts. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/imgprep.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imgprep_config c;
	struct err e;

	e.msg[0] = '\0';
	if (imgprep_config_parse(&c, (const char *)data, size, "fuzz.json", &e) < 0) {
		if (e.msg[0] == '\0')
			abort();
		return 0;
	}
	if (c.tile < 14 || c.tile > 4096 || c.max_tiles < 1 || c.max_tiles > IMGPREP_MAX_TILES ||
	    !(c.rescale > 0) || c.rescale > 1 || !c.do_pad)
		abort();
	for (int i = 0; i < 3; i++)
		if (!isfinite(c.mean[i]) || !(c.std[i] > 0) || !isfinite(c.std[i]))
			abort();
	return 0;
}
