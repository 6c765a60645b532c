/* app.h - the application: what each function does with its invocations.
 *
 * This is the seam between the HTTP side (server.h, envelope.h) and the
 * pipeline (decode -> map -> sinks). app_register connects every function
 * found in function.json to a server route.
 *
 * Interim body (until the pipeline is wired in): a serviceBusTrigger
 * function parses the envelope and answers 200 with one Logs line per
 * message (id, size, content type); an httpTrigger function answers 501
 * through its http output binding. */
#ifndef D365CDC_APP_H
#define D365CDC_APP_H

#include "common/config.h"
#include "host/functions.h"
#include "common/result.h"
#include "host/server.h"

struct app;

/* Create the application for the functions in fns. cfg and fns are
 * borrowed and must outlive the app. Must not do slow work (connections to
 * Redis/SQL are made lazily): the server is already answering readiness.
 * *out: caller frees with app_destroy.
 *   APP_ERR_CONFIG  the configuration cannot serve these functions */
APP_NODISCARD enum app_result app_create(const struct app_config *cfg,
                                         const struct function_set *fns, struct app **out,
                                         struct app_err *err);

/* Register a route for every function the app serves (functions with other
 * triggers are logged and skipped). Call before server_open.
 *   APP_ERR_CONFIG  as server_register */
APP_NODISCARD enum app_result app_register(struct app *app, struct server *srv,
                                           struct app_err *err);

/* Free the app. NULL-safe. Call only after server_drain succeeded (no
 * handler is running). */
void app_destroy(struct app *app);

#endif
