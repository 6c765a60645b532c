/* he_proc.c - launching the handler process (see he_proc.h). */
#include "he_proc.h"

#include "common/buf.h"
#include "he_util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char *env_get(char *const *env, const char *name, size_t n)
{
  for (; env && *env; env++)
    if (!strncmp(*env, name, n) && (*env)[n] == '=')
      return *env + n + 1;
  return NULL;
}

/* Set NAME=VALUE in l->env, replacing an existing NAME unless keep. */
static void env_set(struct he_launch *l, const char *kv, bool keep)
{
  const char *eq = strchr(kv, '=');
  size_t n = (size_t)(eq - kv), i;
  for (i = 0; i < l->n_env; i++) {
    if (!strncmp(l->env[i], kv, n) && l->env[i][n] == '=') {
      if (!keep) {
        free(l->env[i]);
        l->env[i] = xstrdup(kv);
      }
      return;
    }
  }
  l->env = xrealloc(l->env, (l->n_env + 2) * sizeof *l->env);
  l->env[l->n_env++] = xstrdup(kv);
  l->env[l->n_env] = NULL;
}

static bool valid_kv(const char *kv)
{
  const char *eq = strchr(kv, '=');
  return eq && eq != kv;
}

enum app_result he_launch_init(struct he_launch *l, const struct he_app *app, char *const *settings,
                               size_t n_settings, char *const *env, size_t n_env,
                               struct app_err *err)
{
  char **e;
  size_t i;
  memset(l, 0, sizeof *l);
  l->app = app;
  l->env = xcalloc(1, sizeof *l->env);
  for (e = environ; e && *e; e++)
    if (valid_kv(*e))
      env_set(l, *e, false);
  for (i = 0; i < n_settings; i++) {
    if (!valid_kv(settings[i]))
      return app_err_set(err, APP_ERR_CONFIG, "setting \"%s\" is not NAME=VALUE", settings[i]);
    env_set(l, settings[i], true); /* Core Tools: the environment wins */
  }
  for (i = 0; i < n_env; i++) {
    if (!valid_kv(env[i]))
      return app_err_set(err, APP_ERR_CONFIG, "--env \"%s\" is not NAME=VALUE", env[i]);
    env_set(l, env[i], false);
  }
  if (app->working_dir && *app->working_dir) {
    char *wd = he_expand_env(app->working_dir, l->env);
    l->cwd = wd[0] == '/' ? xstrdup(wd) : he_path_join(app->root, wd);
    free(wd);
  } else {
    l->cwd = xstrdup(app->root);
  }
  return APP_OK;
}

void he_launch_cleanup(struct he_launch *l)
{
  size_t i;
  if (!l)
    return;
  for (i = 0; i < l->n_env; i++)
    free(l->env[i]);
  free(l->env);
  free(l->cwd);
  memset(l, 0, sizeof *l);
}

char *he_expand_env(const char *s, char *const *env)
{
  struct buf b;
  const char *p = s;
  buf_init(&b, 0);
  while (*p) {
    const char *open = strchr(p, '%'), *close;
    const char *val;
    if (!open) {
      APP_ASSERT(buf_append_str(&b, p) == APP_OK);
      break;
    }
    APP_ASSERT(buf_append(&b, p, (size_t)(open - p)) == APP_OK);
    close = strchr(open + 1, '%');
    if (!close) {
      APP_ASSERT(buf_append_str(&b, open) == APP_OK);
      break;
    }
    val = close > open + 1 ? env_get(env, open + 1, (size_t)(close - open - 1)) : NULL;
    if (val) {
      APP_ASSERT(buf_append_str(&b, val) == APP_OK);
      p = close + 1;
    } else {
      /* not a variable: keep the '%' and rescan from the second one */
      APP_ASSERT(buf_append(&b, open, (size_t)(close - open)) == APP_OK);
      p = close;
    }
  }
  APP_ASSERT(buf_append(&b, "", 0) == APP_OK && buf_reserve(&b, 1) == APP_OK);
  b.data[b.len] = '\0';
  return buf_steal(&b, NULL);
}

void he_sanitize_expanded(char *s)
{
  /* regex %(.+?)% : a '%', at least one character, the next '%' */
  char *r = s, *w = s;
  while (*r) {
    if (*r == '%' && r[1]) {
      char *close = strchr(r + 2, '%');
      if (close) {
        r = close + 1;
        continue;
      }
    }
    *w++ = *r++;
  }
  *w = '\0';
}

char **he_dotnet_split_args(const char *s, size_t *out_n)
{
  char **argv = xcalloc(1, sizeof *argv);
  size_t n = 0, len = strlen(s), i = 0;
  struct buf cur;
  buf_init(&cur, 0);
  while (i < len) {
    bool in_quotes = false;
    while (i < len && (s[i] == ' ' || s[i] == '\t'))
      i++;
    if (i >= len)
      break;
    buf_reset(&cur);
    while (i < len && (in_quotes || (s[i] != ' ' && s[i] != '\t'))) {
      if (s[i] == '\\') {
        size_t bs = 0, k;
        while (i < len && s[i] == '\\') {
          bs++;
          i++;
        }
        if (i < len && s[i] == '"') {
          for (k = 0; k < bs / 2; k++)
            APP_ASSERT(buf_append_char(&cur, '\\') == APP_OK);
          if (bs % 2) {
            APP_ASSERT(buf_append_char(&cur, '"') == APP_OK);
            i++;
          }
        } else {
          for (k = 0; k < bs; k++)
            APP_ASSERT(buf_append_char(&cur, '\\') == APP_OK);
        }
        continue;
      }
      if (s[i] == '"') {
        if (in_quotes && i + 1 < len && s[i + 1] == '"') {
          APP_ASSERT(buf_append_char(&cur, '"') == APP_OK);
          i += 2;
          continue;
        }
        in_quotes = !in_quotes;
        i++;
        continue;
      }
      APP_ASSERT(buf_append_char(&cur, s[i]) == APP_OK);
      i++;
    }
    argv = xrealloc(argv, (n + 2) * sizeof *argv);
    argv[n++] = xstrndup(cur.data ? cur.data : "", cur.len);
    argv[n] = NULL;
  }
  buf_cleanup(&cur);
  *out_n = n;
  return argv;
}

void he_argv_free(char **argv)
{
  char **a;
  if (!argv)
    return;
  for (a = argv; *a; a++)
    free(*a);
  free(argv);
}

/* The argument string the host builds, split back into argv (argv[0] is
 * the executable). */
static char **build_argv(const struct he_app *app, char *const *env, const char *exe)
{
  struct buf s;
  size_t i, n;
  char **items, **argv;
  buf_init(&s, 0);
  for (i = 0; i < app->n_args; i++) {
    char *x = he_expand_env(app->args[i], env);
    APP_ASSERT(buf_printf(&s, " %s", x) == APP_OK);
    free(x);
  }
  if (app->worker_path && *app->worker_path) {
    char *x = he_expand_env(app->worker_path, env);
    APP_ASSERT(buf_printf(&s, " \"%s\"", x) == APP_OK);
    free(x);
  }
  for (i = 0; i < app->n_worker_args; i++) {
    char *x = he_expand_env(app->worker_args[i], env);
    APP_ASSERT(buf_printf(&s, " %s", x) == APP_OK);
    free(x);
  }
  APP_ASSERT(buf_reserve(&s, 1) == APP_OK);
  s.data[s.len] = '\0';
  he_sanitize_expanded(s.data);
  items = he_dotnet_split_args(s.data, &n);
  buf_cleanup(&s);
  argv = xcalloc(n + 2, sizeof *argv);
  argv[0] = xstrdup(exe);
  for (i = 0; i < n; i++)
    argv[i + 1] = items[i];
  free(items);
  return argv;
}

static void child_fail(int fd, const char *what)
{
  char msg[256];
  int n = snprintf(msg, sizeof msg, "%s: %s", what, strerror(errno));
  if (n > 0 && write(fd, msg, (size_t)n) < 0)
    _exit(127);
  _exit(127);
}

enum app_result he_proc_spawn(struct he_proc *p, const struct he_launch *l, int port,
                              struct app_err *err)
{
  const struct he_app *app = l->app;
  char **envp = NULL, *exe_expanded = NULL, *exe = NULL;
  char kv[5][PATH_MAX + 64];
  int outp[2] = {-1, -1}, errp[2] = {-1, -1}, ctl[2] = {-1, -1};
  enum app_result r = APP_OK;
  char worker_id[37], msg[300];
  struct stat st;
  ssize_t got;
  size_t i, n_env = l->n_env;
  pid_t pid;

  memset(p, 0, sizeof *p);
  p->out_fd = p->err_fd = -1;
  he_guid(worker_id);
  /* the per-process variables override anything inherited */
  envp = xcalloc(n_env + 6, sizeof *envp);
  snprintf(kv[0], sizeof kv[0], "FUNCTIONS_CUSTOMHANDLER_PORT=%d", port);
  snprintf(kv[1], sizeof kv[1], "FUNCTIONS_HTTPWORKER_PORT=%d", port);
  snprintf(kv[2], sizeof kv[2], "FUNCTIONS_CUSTOMHANDLER_WORKER_ID=%s", worker_id);
  snprintf(kv[3], sizeof kv[3], "FUNCTIONS_HTTPWORKER_ID=%s", worker_id);
  snprintf(kv[4], sizeof kv[4], "FUNCTIONS_APP_ROOT_PATH=%s", app->root);
  {
    size_t k = 0, j;
    for (i = 0; i < n_env; i++) {
      bool overridden = false;
      for (j = 0; j < 5; j++) {
        size_t nl = (size_t)(strchr(kv[j], '=') - kv[j]);
        if (!strncmp(l->env[i], kv[j], nl) && l->env[i][nl] == '=')
          overridden = true;
      }
      if (!overridden)
        envp[k++] = l->env[i];
    }
    for (j = 0; j < 5; j++)
      envp[k++] = kv[j];
    envp[k] = NULL;
  }
  exe_expanded = he_expand_env(app->exe, envp);
  if (exe_expanded[0] != '/') {
    char *candidate = he_path_join(app->root, exe_expanded);
    if (stat(candidate, &st) == 0 && S_ISREG(st.st_mode)) {
      exe = candidate;
    } else {
      free(candidate);
      exe = xstrdup(exe_expanded);
    }
  } else {
    exe = xstrdup(exe_expanded);
  }
  p->argv = build_argv(app, envp, exe);
  p->exe = exe;
  exe = NULL;

  if (pipe2(outp, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0 || pipe2(ctl, O_CLOEXEC) != 0) {
    r = app_err_set(err, APP_ERR_IO, "pipe: %s", strerror(errno));
    goto out;
  }
  pid = fork();
  if (pid < 0) {
    r = app_err_set(err, APP_ERR_IO, "fork: %s", strerror(errno));
    goto out;
  }
  if (pid == 0) {
    sigset_t none;
    int devnull = open("/dev/null", O_RDONLY);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    setpgid(0, 0);
    if (devnull >= 0)
      dup2(devnull, 0);
    if (dup2(outp[1], 1) < 0 || dup2(errp[1], 2) < 0)
      child_fail(ctl[1], "dup2");
    if (chdir(l->cwd) != 0)
      child_fail(ctl[1], l->cwd);
    if (strchr(p->exe, '/'))
      execve(p->exe, p->argv, envp);
    else
      execvpe(p->exe, p->argv, envp);
    child_fail(ctl[1], p->exe);
  }
  close(ctl[1]);
  ctl[1] = -1;
  /* the control pipe closes on a successful exec (O_CLOEXEC) */
  do {
    got = read(ctl[0], msg, sizeof msg - 1);
  } while (got < 0 && errno == EINTR);
  if (got > 0) {
    int status;
    msg[got] = '\0';
    waitpid(pid, &status, 0);
    r = app_err_set(err, APP_ERR_IO, "cannot start the handler: %s", msg);
    goto out;
  }
  p->pid = pid;
  p->out_fd = outp[0];
  p->err_fd = errp[0];
  outp[0] = errp[0] = -1;
  fcntl(p->out_fd, F_SETFL, fcntl(p->out_fd, F_GETFL) | O_NONBLOCK);
  fcntl(p->err_fd, F_SETFL, fcntl(p->err_fd, F_GETFL) | O_NONBLOCK);
out:
  for (i = 0; i < 2; i++) {
    if (outp[i] >= 0)
      close(outp[i]);
    if (errp[i] >= 0)
      close(errp[i]);
    if (ctl[i] >= 0)
      close(ctl[i]);
  }
  free(envp);
  free(exe_expanded);
  free(exe);
  return r;
}

void he_proc_release(struct he_proc *p)
{
  if (!p)
    return;
  if (p->out_fd >= 0)
    close(p->out_fd);
  if (p->err_fd >= 0)
    close(p->err_fd);
  p->out_fd = p->err_fd = -1;
  he_argv_free(p->argv);
  p->argv = NULL;
  free(p->exe);
  p->exe = NULL;
}
