/* altkey.c - canonical alternate-key values and index key names. */
#include "map/altkey.h"

#include "common/json.h"

#include <string.h>

/* out has room for len + 2 bytes; returns the length written (no NUL),
 * 0 when lex is not a plain decimal number */
static size_t canon_num(const char *lex, size_t len, char *out)
{
  size_t i = 0, end = len, dot = len, k, n = 0;
  bool neg = false, zero = true;

  if (i < len && lex[i] == '-')
    neg = true, i++;
  if (i == len)
    return 0;
  for (k = i; k < len; k++) {
    if (lex[k] == '.' && dot == len && k > i && k + 1 < len)
      dot = k;
    else if (lex[k] < '0' || lex[k] > '9')
      return 0;
  }
  /* leading zeros of the whole part: "007" -> "7" */
  while (i + 1 < len && lex[i] == '0' && lex[i + 1] != '.')
    i++;
  if (dot < len) {
    while (end > dot + 1 && lex[end - 1] == '0')
      end--;
    if (end == dot + 1)
      end = dot;
  }
  for (k = i; k < end; k++)
    if (lex[k] >= '1' && lex[k] <= '9')
      zero = false;
  out[n++] = 'n';
  if (neg && !zero)
    out[n++] = '-';
  memcpy(out + n, lex + i, end - i);
  return n + end - i;
}

bool altkey_canon_number(struct arena *a, const char *lex, size_t len, const char **out,
                         size_t *out_len)
{
  char *c = arena_alloc(a, len + 3);
  size_t n = c ? canon_num(lex, len, c) : 0;
  if (!n || n > ALTKEY_MAX_VALUE)
    return false;
  c[n] = '\0';
  *out = c;
  *out_len = n;
  return true;
}

enum app_result altkey_canon_prop(const struct doc_prop *pr, struct buf *out, bool *out_ok)
{
  *out_ok = false;
  if (pr->kind == DOC_STRING && pr->text && pr->text_len + 1 <= ALTKEY_MAX_VALUE) {
    APP_RETURN_IF_FAILED(buf_append_char(out, 's'));
    APP_RETURN_IF_FAILED(buf_append(out, pr->text, pr->text_len));
    *out_ok = true;
  } else if (pr->kind == DOC_NUMBER && pr->text && pr->text_len + 2 <= ALTKEY_MAX_VALUE) {
    size_t at = out->len, n;
    APP_RETURN_IF_FAILED(buf_reserve(out, pr->text_len + 3));
    n = canon_num(pr->text, pr->text_len, out->data + at);
    out->len = at + n;
    *out_ok = n > 0;
  }
  return APP_OK;
}

bool altkey_canon_json(struct arena *a, const char *json, size_t len, const char **out,
                       size_t *out_len)
{
  struct json *root;
  struct app_err err;
  char *c;

  if (json_parse(a, json, len, 2, &root, &err) != APP_OK)
    return false;
  if (root->type == JSON_NUMBER)
    return altkey_canon_number(a, root->str, root->len, out, out_len);
  if (root->type != JSON_STRING || root->len + 1 > ALTKEY_MAX_VALUE)
    return false;
  c = arena_alloc(a, (size_t)root->len + 2);
  if (!c)
    return false;
  c[0] = 's';
  memcpy(c + 1, root->str, root->len);
  c[root->len + 1] = '\0';
  *out = c;
  *out_len = (size_t)root->len + 1;
  return true;
}

enum app_result altkey_index_key(struct buf *b, const char *prefix, const char *table,
                                 const char *key, const char *canon, size_t canon_len)
{
  APP_RETURN_IF_FAILED(buf_printf(b, "%s:akey:%s:%s:", prefix, table, key));
  return buf_append(b, canon, canon_len);
}

enum app_result altkey_set_key(struct buf *b, const char *prefix, const char *table,
                               const struct doc_altkey *k, const char *canon, size_t canon_len)
{
  if (!k->is_index)
    return altkey_index_key(b, prefix, table, k->name, canon, canon_len);
  APP_RETURN_IF_FAILED(buf_printf(b, "%s:idx:%s:%s:", prefix, table, k->name));
  return buf_append(b, canon, canon_len);
}
