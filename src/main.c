/*
 * main.c - the nimbus executable: everything lives in the library (src/, src/cli/); main only
 * hands the command line to the CLI dispatcher (cli.c), which runs `serve` for the daemon and the
 * client subcommands otherwise, and returns its exit code.
 */
#include "cli/cli.h"

int main(int argc, char **argv)
{
    return cli_main(argc, argv);
}
