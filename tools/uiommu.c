/* SPDX-License-Identifier: MIT */
/*
 * uiommu: entry point and command table. `uiommu help <cmd>` and
 * `uiommu <cmd> --help` both print a command's help.
 */
#include <stdio.h>
#include <string.h>

#include "uiommu.h"

static const struct uiommu_cmd commands[] = {
	{ "migrate", cmd_migrate, "live migration of a guest and its DMA device (demo, send, recv)" },
	{ "dirty", cmd_dirty, "dirty tracking: a DMA device alone (demo), or a guest and a device (run)" },
};

static int usage(FILE *out)
{
	fprintf(out, "usage: uiommu <command> [options]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].help);
	fprintf(out, "  %-10s %s\n", "help", "help <command>: a command's options");
	fprintf(out, "  %-10s %s\n", "version", "print the version");
	return out == stdout ? 0 : EXIT_USAGE;
}

static const struct uiommu_cmd *find(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

int main(int argc, char **argv)
{
	const struct uiommu_cmd *cmd;

	if (argc < 2)
		return usage(stderr);
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		return usage(stdout);
	if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
		printf("uiommu %s\n", UIOMMU_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "help")) {
		if (argc < 3)
			return usage(stdout);
		cmd = find(argv[2]);
		if (!cmd)
			return usage(stderr);
		static char help_opt[] = "--help";
		char *args[] = { argv[2], help_opt, NULL };

		return cmd->fn(2, args);
	}
	cmd = find(argv[1]);
	if (!cmd) {
		fprintf(stderr, "uiommu: unknown command '%s'\n", argv[1]);
		return usage(stderr);
	}
	return cmd->fn(argc - 1, argv + 1);
}
