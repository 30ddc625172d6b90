/*
 * echo: a vouch function in C, built as a WASI command with wasi-libc
 * (docs/FUNCTIONS.md). The runtime starts it once per invocation, with the
 * input on stdin; what it writes to stdout is the output, and exit code 0
 * means success. An empty input is refused with a code the caller sees even
 * when the input was sealed.
 */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
	static char buf[1 << 16];
	size_t total = 0, n;
	while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) {
		if (fwrite(buf, 1, n, stdout) != n) {
			fprintf(stderr, "echo: writing the output failed\n");
			return 2;
		}
		total += n;
	}
	if (ferror(stdin)) {
		fprintf(stderr, "echo: reading the input failed\n");
		return 2;
	}
	if (total == 0) {
		/* A refusal: the last line of stderr, then a non-zero exit. Only
		 * "missing_value" reaches a caller whose input was sealed. */
		fprintf(stderr, "vouch-refusal:missing_value: the input is empty; send the bytes to echo\n");
		return 1;
	}
	return 0;
}
