/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "bench.h"
#include "tool.h"

int
bench_stego(int argc, char **argv)
{
	(void)argc;
	return tool_fail(1, argv[0], "not implemented yet");
}
