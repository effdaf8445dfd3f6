/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "tool.h"

int
cmd_crypto(int argc, char **argv)
{
	(void)argc;
	return tool_fail(1, argv[0], "not implemented yet");
}

int
cmd_keygen(int argc, char **argv)
{
	(void)argc;
	return tool_fail(1, argv[0], "not implemented yet");
}
