/* he_proc.h - start the custom handler process the way the Functions host does.
 *
 * Command line (DefaultWorkerProcessFactory): the host joins
 * " <arg>..." + " \"<defaultWorkerPath>\"" + " <workerArg>..." into one
 * string, expands %VAR% from its environment, removes any %X% left over,
 * and .NET's Process then splits that string into argv with the Windows
 * quoting rules (so an argument with a space becomes two). The executable
 * is <root>/<defaultExecutablePath> when that file exists, else a command
 * looked up on PATH. The working directory defaults to the app root.
 *
 * Environment: the emulator's own environment, plus local.settings.json
 * Values that are not already set (as Core Tools does), plus --env values,
 * plus FUNCTIONS_CUSTOMHANDLER_PORT, FUNCTIONS_HTTPWORKER_PORT,
 * FUNCTIONS_CUSTOMHANDLER_WORKER_ID, FUNCTIONS_HTTPWORKER_ID and
 * FUNCTIONS_APP_ROOT_PATH.
 *
 * stdout and stderr are pipes the caller reads (non-blocking). The child
 * runs in its own process group so a terminal ^C reaches only the
 * emulator, which then stops the handler itself. */
#ifndef D365CDC_HE_PROC_H
#define D365CDC_HE_PROC_H

#include "common/result.h"
#include "he_app.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct he_launch {
  const struct he_app *app; /* borrowed */
  char **env;               /* "NAME=VALUE", NULL-terminated; owned */
  size_t n_env;
  char *cwd; /* owned */
};

struct he_proc {
  pid_t pid;  /* 0 when not running */
  int out_fd; /* -1 when closed */
  int err_fd;
  char **argv; /* the argv used (owned, NULL-terminated) */
  char *exe;   /* the executable used (owned) */
};

/* Prepare the environment and working directory. settings/env are
 * "NAME=VALUE" strings (borrowed). Errors: APP_ERR_CONFIG (bad NAME=VALUE). */
APP_NODISCARD enum app_result he_launch_init(struct he_launch *l, const struct he_app *app,
                                             char *const *settings, size_t n_settings,
                                             char *const *env, size_t n_env, struct app_err *err);
void he_launch_cleanup(struct he_launch *l);

/* Start the handler listening on port, with a fresh worker id.
 * Errors: APP_ERR_IO (pipe/fork failed, or exec/chdir failed in the child:
 * the message names the executable and the errno text; the child has been
 * reaped). On success p->pid is set. Either way release p with
 * he_proc_release once done with it. */
APP_NODISCARD enum app_result he_proc_spawn(struct he_proc *p, const struct he_launch *l, int port,
                                            struct app_err *err);

/* Close the pipes and free argv (does not signal or reap). NULL-safe. */
void he_proc_release(struct he_proc *p);

/* Split a .NET ProcessStartInfo.Arguments string into argv items
 * (whitespace separates; "..." groups; 2n backslashes + quote -> n
 * backslashes and a toggle; 2n+1 -> n backslashes and a literal quote;
 * "" inside quotes -> a quote). Returns a NULL-terminated array the caller
 * frees with he_argv_free; *out_n gets the count. */
char **he_dotnet_split_args(const char *s, size_t *out_n);
void he_argv_free(char **argv);

/* Environment.ExpandEnvironmentVariables over env ("NAME=VALUE" list):
 * each %NAME% of a set variable is replaced; others stay. Caller frees. */
char *he_expand_env(const char *s, char *const *env);

/* Remove every %X% (non-empty X) left after expansion, as
 * DefaultWorkerProcessFactory.SanitizeExpandedArgument does. In place. */
void he_sanitize_expanded(char *s);

#endif
