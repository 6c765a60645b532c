/* he_stats.c - histogram and summary output. */
#include "he_stats.h"

#include "common/buf.h"
#include "he_nj.h"
#include "he_util.h"

#include <string.h>

static size_t bucket_of(int64_t v)
{
  int msb;
  uint64_t u = v < 0 ? 0 : (uint64_t)v;
  if (u < (1u << HE_HIST_SUB_BITS))
    return (size_t)u;
  msb = 63 - __builtin_clzll(u);
  if (msb > HE_HIST_MAX_MSB)
    return HE_HIST_BUCKETS - 1;
  return ((size_t)(msb - HE_HIST_SUB_BITS + 1) << HE_HIST_SUB_BITS) +
         (size_t)((u >> (msb - HE_HIST_SUB_BITS)) - (1u << HE_HIST_SUB_BITS));
}

static int64_t bucket_upper(size_t idx)
{
  size_t octave = idx >> HE_HIST_SUB_BITS, sub = idx & ((1u << HE_HIST_SUB_BITS) - 1);
  int shift;
  if (octave == 0)
    return (int64_t)idx;
  shift = (int)octave - 1;
  return (int64_t)((((uint64_t)sub + (1u << HE_HIST_SUB_BITS) + 1) << shift) - 1);
}

void he_hist_add(struct he_hist *h, int64_t ns)
{
  h->counts[bucket_of(ns)]++;
  h->n++;
  h->sum_ns += (double)ns;
  if (ns > h->max_ns)
    h->max_ns = ns;
}

int64_t he_hist_quantile(const struct he_hist *h, double q)
{
  uint64_t rank, seen = 0;
  size_t i;
  if (h->n == 0)
    return 0;
  rank = (uint64_t)(q * (double)h->n + 0.999999);
  if (rank < 1)
    rank = 1;
  for (i = 0; i < HE_HIST_BUCKETS; i++) {
    seen += h->counts[i];
    if (seen >= rank) {
      int64_t up = bucket_upper(i);
      return up > h->max_ns ? h->max_ns : up;
    }
  }
  return h->max_ns;
}

void he_count_add(struct he_count *table, size_t *n, size_t max, uint64_t *other, const char *text)
{
  size_t i;
  for (i = 0; i < *n; i++) {
    if (!strncmp(table[i].text, text, sizeof table[i].text - 1)) {
      table[i].count++;
      return;
    }
  }
  if (*n < max) {
    snprintf(table[*n].text, sizeof table[*n].text, "%s", text);
    table[*n].count = 1;
    (*n)++;
    return;
  }
  (*other)++;
}

static double ms(int64_t ns)
{
  return (double)ns / 1e6;
}

void he_summary_print(const struct he_summary *s, FILE *f)
{
  size_t i;
  double el = s->elapsed_s > 0 ? s->elapsed_s : 1e-9;
  fprintf(f, "hostemu summary\n");
  fprintf(f, "  function        %s (%s)\n", s->function, s->shape);
  if (s->launched) {
    fprintf(f, "  handler         pid %d on 127.0.0.1:%d", s->pid, s->port);
    if (s->cold_start_ms >= 0)
      fprintf(f, ", cold start %.1f ms (%llu readiness probes)", s->cold_start_ms,
              (unsigned long long)s->probes);
    fprintf(f, "\n  restarts        %d (%d counted as errors)%s%s\n", s->restarts, s->error_exits,
            s->gave_up ? ", gave up: " : "", s->gave_up ? s->gave_up_reason : "");
  } else {
    fprintf(f, "  handler         already running on 127.0.0.1:%d\n", s->port);
  }
  fprintf(f, "  invocations     %llu (%llu succeeded, %llu failed)\n",
          (unsigned long long)s->invocations, (unsigned long long)s->inv_ok,
          (unsigned long long)s->inv_failed);
  if (!strcmp(s->mode, "servicebus"))
    fprintf(f,
            "  messages        %llu generated, %llu deliveries, %llu succeeded, %llu retried, "
            "%llu dead-lettered, %llu unsettled\n",
            (unsigned long long)s->generated, (unsigned long long)s->deliveries,
            (unsigned long long)s->succeeded, (unsigned long long)s->retried,
            (unsigned long long)s->dead_lettered, (unsigned long long)s->unsettled);
  if (s->dlq)
    fprintf(f,
            "  dead-letter q   %llu deliveries to the audit function, %llu completed, %llu left\n",
            (unsigned long long)s->dlq_deliveries, (unsigned long long)s->dlq_succeeded,
            (unsigned long long)s->dlq_left);
  fprintf(f, "  throughput      %.1f invocations/s, %.1f messages/s over %.3f s\n",
          (double)s->invocations / el, (double)s->deliveries / el, s->elapsed_s);
  fprintf(f, "  latency ms      p50 %.3f  p90 %.3f  p99 %.3f  max %.3f  (per invocation)\n",
          ms(he_hist_quantile(&s->lat, 0.5)), ms(he_hist_quantile(&s->lat, 0.9)),
          ms(he_hist_quantile(&s->lat, 0.99)), ms(s->lat.max_ns));
  fprintf(f, "  concurrency     limit %d, max in flight %llu\n", s->concurrency,
          (unsigned long long)s->max_in_flight);
  fprintf(f, "  emulator cpu    %.2f s (%.0f%% of one core)\n", s->cpu_s,
          s->elapsed_s > 0 ? 100.0 * s->cpu_s / s->elapsed_s : 0.0);
  for (i = 0; i < s->n_reasons; i++)
    fprintf(f, "  failure         %llu x %s\n", (unsigned long long)s->reasons[i].count,
            s->reasons[i].text);
  if (s->other_reasons)
    fprintf(f, "  failure         %llu x (other reasons)\n", (unsigned long long)s->other_reasons);
  for (i = 0; i < s->n_warnings; i++)
    fprintf(f, "  WARNING         %llu x %s\n", (unsigned long long)s->warnings[i].count,
            s->warnings[i].text);
  if (s->other_warnings)
    fprintf(f, "  WARNING         %llu x (other warnings)\n",
            (unsigned long long)s->other_warnings);
  if (s->exit_known) {
    if (s->exit_signal)
      fprintf(f, "  handler exit    signal %d%s\n", s->exit_signal,
              s->stopped ? " (after SIGTERM)" : "");
    else
      fprintf(f, "  handler exit    code %d%s\n", s->exit_code,
              s->stopped ? " (after SIGTERM)" : "");
  }
}

static enum app_result counts_json(struct buf *b, const char *name, const struct he_count *t,
                                   size_t n, uint64_t other)
{
  size_t i;
  APP_RETURN_IF_FAILED(buf_printf(b, ",\"%s\":[", name));
  for (i = 0; i < n; i++) {
    APP_RETURN_IF_FAILED(buf_append_str(b, i ? ",{\"text\":" : "{\"text\":"));
    APP_RETURN_IF_FAILED(he_nj_str(b, t[i].text, strlen(t[i].text)));
    APP_RETURN_IF_FAILED(buf_printf(b, ",\"count\":%llu}", (unsigned long long)t[i].count));
  }
  if (other)
    APP_RETURN_IF_FAILED(buf_printf(b, "%s{\"text\":\"(other)\",\"count\":%llu}", n ? "," : "",
                                    (unsigned long long)other));
  return buf_append_char(b, ']');
}

static enum app_result summary_json(const struct he_summary *s, struct buf *b)
{
  double el = s->elapsed_s > 0 ? s->elapsed_s : 1e-9;
  APP_RETURN_IF_FAILED(buf_printf(b, "{\"mode\":\"%s\",\"function\":", s->mode));
  APP_RETURN_IF_FAILED(he_nj_str(b, s->function, strlen(s->function)));
  APP_RETURN_IF_FAILED(buf_append_str(b, ",\"shape\":"));
  APP_RETURN_IF_FAILED(he_nj_str(b, s->shape, strlen(s->shape)));
  APP_RETURN_IF_FAILED(buf_printf(
      b,
      ",\"handler\":{\"launched\":%s,\"pid\":%d,\"port\":%d,\"coldStartMs\":%.3f,"
      "\"readinessProbes\":%llu,\"restarts\":%d,\"errorExits\":%d,\"gaveUp\":%s,",
      s->launched ? "true" : "false", s->pid, s->port, s->cold_start_ms,
      (unsigned long long)s->probes, s->restarts, s->error_exits, s->gave_up ? "true" : "false"));
  APP_RETURN_IF_FAILED(buf_append_str(b, "\"gaveUpReason\":"));
  APP_RETURN_IF_FAILED(he_nj_str(b, s->gave_up_reason, strlen(s->gave_up_reason)));
  APP_RETURN_IF_FAILED(
      buf_printf(b, ",\"stopped\":%s,\"exitCode\":", s->stopped ? "true" : "false"));
  if (s->exit_known && !s->exit_signal)
    APP_RETURN_IF_FAILED(buf_printf(b, "%d", s->exit_code));
  else
    APP_RETURN_IF_FAILED(buf_append_str(b, "null"));
  APP_RETURN_IF_FAILED(buf_append_str(b, ",\"exitSignal\":"));
  if (s->exit_known && s->exit_signal)
    APP_RETURN_IF_FAILED(buf_printf(b, "%d", s->exit_signal));
  else
    APP_RETURN_IF_FAILED(buf_append_str(b, "null"));
  APP_RETURN_IF_FAILED(buf_printf(
      b,
      "},\"invocations\":%llu,\"invocationsSucceeded\":%llu,\"invocationsFailed\":%llu,"
      "\"messages\":{\"generated\":%llu,\"delivered\":%llu,\"succeeded\":%llu,\"retried\":%llu,"
      "\"deadLettered\":%llu,\"unsettled\":%llu},"
      "\"elapsedSeconds\":%.6f,\"invocationsPerSecond\":%.3f,\"messagesPerSecond\":%.3f,"
      "\"latencyMs\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"max\":%.3f,\"mean\":%.3f},"
      "\"concurrency\":{\"limit\":%d,\"maxInFlight\":%llu},\"emulatorCpuSeconds\":%.3f",
      (unsigned long long)s->invocations, (unsigned long long)s->inv_ok,
      (unsigned long long)s->inv_failed, (unsigned long long)s->generated,
      (unsigned long long)s->deliveries, (unsigned long long)s->succeeded,
      (unsigned long long)s->retried, (unsigned long long)s->dead_lettered,
      (unsigned long long)s->unsettled, s->elapsed_s, (double)s->invocations / el,
      (double)s->deliveries / el, ms(he_hist_quantile(&s->lat, 0.5)),
      ms(he_hist_quantile(&s->lat, 0.9)), ms(he_hist_quantile(&s->lat, 0.99)), ms(s->lat.max_ns),
      s->lat.n ? s->lat.sum_ns / (double)s->lat.n / 1e6 : 0.0, s->concurrency,
      (unsigned long long)s->max_in_flight, s->cpu_s));
  if (s->dlq)
    APP_RETURN_IF_FAILED(buf_printf(b,
                                    ",\"deadLetterQueue\":{\"delivered\":%llu,\"completed\":%llu,"
                                    "\"left\":%llu}",
                                    (unsigned long long)s->dlq_deliveries,
                                    (unsigned long long)s->dlq_succeeded,
                                    (unsigned long long)s->dlq_left));
  APP_RETURN_IF_FAILED(counts_json(b, "failures", s->reasons, s->n_reasons, s->other_reasons));
  APP_RETURN_IF_FAILED(counts_json(b, "warnings", s->warnings, s->n_warnings, s->other_warnings));
  return buf_append_str(b, "}\n");
}

enum app_result he_summary_write_json(const struct he_summary *s, const char *path,
                                      struct app_err *err)
{
  struct buf b;
  enum app_result r;
  buf_init(&b, 0);
  r = summary_json(s, &b);
  if (r == APP_OK)
    r = he_file_write(path, b.data, b.len, err);
  else
    app_err_set(err, r, "building the JSON summary");
  buf_cleanup(&b);
  return r;
}
