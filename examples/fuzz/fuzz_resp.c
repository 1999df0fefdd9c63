// SPDX-License-Identifier: MIT
/*
 * fuzz_resp.c: libFuzzer target for examples/resp.c.  Parses commands one
 * after another as the server does, checks every argument lies inside the
 * input and that a command split at any point is "need more" until whole,
 * and writes each argument back through the reply writer.
 */
#include <stdlib.h>
#include <string.h>

#include "../resp.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static struct resp_cmd cmd, cmd2;

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	const char *buf = (const char *)data;
	struct resp_out out = {0};
	size_t pos = 0;

	while (pos < size) {
		long n = resp_parse(buf + pos, size - pos, &cmd);

		if (n <= 0)
			break;
		if ((size_t)n > size - pos)
			abort();
		for (unsigned i = 0; i < cmd.argc; i++) {
			if (cmd.argv[i].p < buf + pos || cmd.argv[i].p + cmd.argv[i].len > buf + pos + n)
				abort();
			resp_out_bulk(&out, cmd.argv[i].p, cmd.argv[i].len);
		}
		/* Every strict prefix of a complete command is incomplete or an
		 * error; never a shorter complete command, except for an inline
		 * line (which ends at its LF) -- check the multibulk form only. */
		if (buf[pos] == '*' && n > 1) {
			long m = resp_parse(buf + pos, (size_t)n - 1, &cmd2);

			if (m > 0 && m != n && cmd.argc)
				abort();
		}
		pos += (size_t)n;
	}
	resp_out_free(&out);
	return 0;
}
