/* dvbody.c - content type checks and body sniffing before JSON parsing.
 *
 * The DataContract preamble is a tiny subset of .NET Binary Format: XML
 * ([MC-NBFX]), the format XmlDictionaryWriter.CreateBinaryWriter produces.
 * BrokeredMessage(object) serialises its body with DataContractSerializer
 * over that writer, so a string body becomes
 *
 *   40 06 "string"                    ShortElement, name "string"
 *   08 33 "http://schemas.microsoft.com/2003/10/Serialization/"
 *                                     ShortXmlnsAttribute (default namespace)
 *   99 <len8> <UTF-8 bytes>           Chars8TextWithEndElement
 *
 * The writer picks Chars16Text (9A/9B, 2-byte length) or Chars32Text (9C/9D,
 * 4-byte length) for longer text, UnicodeChars*Text (B6..BB, UTF-16LE) when
 * UTF-8 would be more than twice as long, EmptyText (A8) for "", and sets the
 * low bit of the last text record instead of writing EndElement (01). A
 * byte[] body is <base64Binary> with Bytes8/16/32Text records (9E..A3) that
 * carry the raw bytes. Lengths are little-endian; names are prefixed by a
 * 7-bit varint (MultiByteInt31). We accept a sequence of text records,
 * closed by a *WithEndElement record or by EndElement, and nothing after. */
#include "dataverse/dvbody.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define SWITCH_TO_JSON                                                                             \
  "set the service endpoint's Message Format to JSON (Plug-in Registration Tool, service "         \
  "endpoint properties)"

static bool ws(unsigned char c)
{
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool ends_with_ci(const char *s, size_t n, const char *suffix)
{
  size_t k = strlen(suffix);
  return n >= k && strncasecmp(s + n - k, suffix, k) == 0;
}

static bool eq_ci(const char *s, size_t n, const char *lit)
{
  return strlen(lit) == n && strncasecmp(s, lit, n) == 0;
}

enum dvbody_ctype dvbody_ctype(const char *ct)
{
  size_t n;
  if (!ct)
    return DVBODY_CT_NONE;
  while (*ct == ' ' || *ct == '\t')
    ct++;
  for (n = 0; ct[n] && ct[n] != ';'; n++)
    ;
  while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
    n--;
  if (n == 0)
    return DVBODY_CT_NONE;
  if (eq_ci(ct, n, "application/json") || eq_ci(ct, n, "text/json") || ends_with_ci(ct, n, "+json"))
    return DVBODY_CT_JSON;
  if (eq_ci(ct, n, "application/msbin1"))
    return DVBODY_CT_MSBIN1;
  if (eq_ci(ct, n, "application/xml") || eq_ci(ct, n, "text/xml") || ends_with_ci(ct, n, "+xml"))
    return DVBODY_CT_XML;
  return DVBODY_CT_OTHER;
}

enum charset { CS_NONE, CS_UTF8, CS_UTF16, CS_UTF16LE, CS_UTF16BE, CS_OTHER };

/* The charset parameter of a content type. The value (without quotes) is
 * copied into name for error messages. */
static enum charset charset_of(const char *ct, char *name, size_t name_size)
{
  const char *p;
  size_t n;

  name[0] = '\0';
  if (!ct)
    return CS_NONE;
  for (p = strchr(ct, ';'); p; p = strchr(p, ';')) {
    p++;
    while (*p == ' ' || *p == '\t')
      p++;
    if (strncasecmp(p, "charset=", 8) != 0)
      continue;
    p += 8;
    if (*p == '"')
      p++;
    for (n = 0; p[n] && p[n] != '"' && p[n] != ';' && p[n] != ' ' && p[n] != '\t'; n++)
      ;
    snprintf(name, name_size, "%.*s", (int)(n < 40 ? n : 40), p);
    if (eq_ci(p, n, "utf-8") || eq_ci(p, n, "utf8") || eq_ci(p, n, "us-ascii"))
      return CS_UTF8;
    if (eq_ci(p, n, "utf-16") || eq_ci(p, n, "unicode"))
      return CS_UTF16;
    if (eq_ci(p, n, "utf-16le"))
      return CS_UTF16LE;
    if (eq_ci(p, n, "utf-16be"))
      return CS_UTF16BE;
    return CS_OTHER;
  }
  return CS_NONE;
}

static enum app_result no_memory(struct app_err *err)
{
  return app_err_set(err, APP_ERR_LIMIT,
                     "message needs more memory than the configured decode limit");
}

/* UTF-16 (no BOM) to UTF-8 in the arena. what names the text in errors. */
static enum app_result utf16_to_utf8(struct arena *a, const unsigned char *s, size_t n, bool be,
                                     const char *what, const char **out, size_t *out_len,
                                     struct app_err *err)
{
  char *buf, *w;
  size_t i;

  if (n % 2)
    return app_err_set(err, APP_ERR_INPUT, "%s: UTF-16 text has an odd number of bytes (%zu)", what,
                       n);
  /* one UTF-16 unit gives at most 3 UTF-8 bytes, a surrogate pair 4 */
  buf = arena_alloc(a, n / 2 * 3 + 1);
  if (!buf)
    return no_memory(err);
  w = buf;
  for (i = 0; i < n; i += 2) {
    unsigned cp = be ? (unsigned)s[i] << 8 | s[i + 1] : (unsigned)s[i + 1] << 8 | s[i];
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      unsigned lo;
      if (i + 4 > n)
        return app_err_set(err, APP_ERR_INPUT,
                           "%s: invalid UTF-16: unpaired high surrogate at byte %zu", what, i);
      lo = be ? (unsigned)s[i + 2] << 8 | s[i + 3] : (unsigned)s[i + 3] << 8 | s[i + 2];
      if (lo < 0xDC00 || lo > 0xDFFF)
        return app_err_set(err, APP_ERR_INPUT,
                           "%s: invalid UTF-16: unpaired high surrogate at byte %zu", what, i);
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      i += 2;
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
      return app_err_set(err, APP_ERR_INPUT,
                         "%s: invalid UTF-16: unpaired low surrogate at byte %zu", what, i);
    }
    if (cp < 0x80) {
      *w++ = (char)cp;
    } else if (cp < 0x800) {
      *w++ = (char)(0xC0 | (cp >> 6));
      *w++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      *w++ = (char)(0xE0 | (cp >> 12));
      *w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
      *w++ = (char)(0x80 | (cp & 0x3F));
    } else {
      *w++ = (char)(0xF0 | (cp >> 18));
      *w++ = (char)(0x80 | ((cp >> 12) & 0x3F));
      *w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
      *w++ = (char)(0x80 | (cp & 0x3F));
    }
  }
  *w = '\0';
  *out = buf;
  *out_len = (size_t)(w - buf);
  return APP_OK;
}

/* --- the DataContract preamble (binary XML subset) ----------------------- */

#define NBFX_END_ELEMENT      0x01
#define NBFX_SHORT_XMLNS      0x08
#define NBFX_XMLNS            0x09
#define NBFX_SHORT_DICT_XMLNS 0x0A
#define NBFX_DICT_XMLNS       0x0B
#define NBFX_SHORT_ELEMENT    0x40
#define NBFX_ZERO_TEXT        0x80
#define NBFX_ONE_TEXT         0x82
#define NBFX_CHARS8           0x98
#define NBFX_CHARS16          0x9A
#define NBFX_CHARS32          0x9C
#define NBFX_BYTES8           0x9E
#define NBFX_BYTES16          0xA0
#define NBFX_BYTES32          0xA2
#define NBFX_EMPTY_TEXT       0xA8
#define NBFX_UNICODE8         0xB6
#define NBFX_UNICODE16        0xB8
#define NBFX_UNICODE32        0xBA

struct rd {
  const unsigned char *s;
  size_t n, pos;
};

/* MultiByteInt31: 7 bits per byte, low group first, at most 5 bytes. */
static bool rd_varint(struct rd *r, uint32_t *out)
{
  uint32_t v = 0;
  int i;
  for (i = 0; i < 5; i++) {
    unsigned b;
    if (r->pos >= r->n)
      return false;
    b = r->s[r->pos++];
    if (i == 4 && b > 0x07)
      return false; /* more than 31 bits */
    v |= (uint32_t)(b & 0x7F) << (7 * i);
    if (!(b & 0x80)) {
      *out = v;
      return true;
    }
  }
  return false;
}

/* A length-prefixed name; *out points into the input. */
static bool rd_name(struct rd *r, const unsigned char **out, size_t *out_len)
{
  uint32_t len;
  if (!rd_varint(r, &len) || len > r->n - r->pos)
    return false;
  *out = r->s + r->pos;
  *out_len = len;
  r->pos += len;
  return true;
}

/* Little-endian length of 1, 2 or 4 bytes. */
static bool rd_len(struct rd *r, int width, size_t *out)
{
  uint32_t v = 0;
  int i;
  if ((size_t)width > r->n - r->pos)
    return false;
  for (i = 0; i < width; i++)
    v |= (uint32_t)r->s[r->pos + (size_t)i] << (8 * i);
  r->pos += (size_t)width;
  if (width == 4 && v > INT32_MAX)
    return false; /* Chars32Text lengths are signed */
  *out = v;
  return true;
}

enum pre_kind { PRE_NONE = 0, PRE_STRING, PRE_BASE64 };

/* Does s start with the element record of a DataContract string/byte[]? */
static enum pre_kind preamble_kind(const unsigned char *s, size_t n)
{
  struct rd r = {s, n, 1};
  const unsigned char *name;
  size_t len;
  if (n < 2 || s[0] != NBFX_SHORT_ELEMENT || !rd_name(&r, &name, &len))
    return PRE_NONE;
  if (len == 6 && !memcmp(name, "string", 6))
    return PRE_STRING;
  if (len == 12 && !memcmp(name, "base64Binary", 12))
    return PRE_BASE64;
  return PRE_NONE;
}

/* One content record. kind: 0 raw bytes (UTF-8 text or byte[] data),
 * 1 UTF-16LE text. */
struct pre_rec {
  int kind;
  const unsigned char *p;
  size_t len;
  bool last; /* it closed the element */
};

static enum app_result pre_next(struct rd *r, enum pre_kind kind, struct pre_rec *out,
                                struct app_err *err)
{
  static const unsigned char zero[] = "0", one[] = "1";
  size_t at = r->pos, len = 0;
  unsigned t, base;
  int width = 0;

  if (r->pos >= r->n)
    return app_err_set(err, APP_ERR_INPUT,
                       "DataContract string preamble: truncated, the body ends at byte %zu "
                       "before the end of the <%s> element",
                       r->pos, kind == PRE_STRING ? "string" : "base64Binary");
  t = r->s[r->pos++];
  out->kind = 0;
  out->p = NULL;
  out->len = 0;
  out->last = t == NBFX_END_ELEMENT || (t >= 0x80 && (t & 1));
  if (t == NBFX_END_ELEMENT)
    return APP_OK;
  base = t & ~1u;
  if (base == NBFX_EMPTY_TEXT)
    return APP_OK;
  if (kind == PRE_STRING && (base == NBFX_ZERO_TEXT || base == NBFX_ONE_TEXT)) {
    out->p = base == NBFX_ZERO_TEXT ? zero : one;
    out->len = 1;
    return APP_OK;
  }
  if (kind == PRE_STRING) {
    switch (base) {
    case NBFX_CHARS8: width = 1; break;
    case NBFX_CHARS16: width = 2; break;
    case NBFX_CHARS32: width = 4; break;
    case NBFX_UNICODE8:
      width = 1;
      out->kind = 1;
      break;
    case NBFX_UNICODE16:
      width = 2;
      out->kind = 1;
      break;
    case NBFX_UNICODE32:
      width = 4;
      out->kind = 1;
      break;
    default: break;
    }
  } else {
    switch (base) {
    case NBFX_BYTES8: width = 1; break;
    case NBFX_BYTES16: width = 2; break;
    case NBFX_BYTES32: width = 4; break;
    default: break;
    }
  }
  if (!width)
    return app_err_set(err, APP_ERR_INPUT,
                       "DataContract string preamble: record type 0x%02X at byte %zu is not a "
                       "text record of a <%s> element",
                       t, at, kind == PRE_STRING ? "string" : "base64Binary");
  if (!rd_len(r, width, &len) || len > r->n - r->pos)
    return app_err_set(err, APP_ERR_INPUT,
                       "DataContract string preamble: text record at byte %zu claims more bytes "
                       "than the body has",
                       at);
  out->p = r->s + r->pos;
  out->len = len;
  r->pos += len;
  return APP_OK;
}

/* Take the text out of a DataContract string (or byte[]) body. */
static enum app_result unwrap_preamble(struct arena *a, const unsigned char *s, size_t n,
                                       enum pre_kind kind, const char **out, size_t *out_len,
                                       struct app_err *err)
{
  struct rd r = {s, n, 1};
  struct pre_rec rec;
  const unsigned char *name;
  size_t name_len, total = 0, records = 0, content_start;
  bool utf16 = false;
  char *buf, *w;

  if (!rd_name(&r, &name, &name_len))
    return app_err_set(err, APP_ERR_INPUT, "DataContract string preamble: bad element name");
  /* namespace declarations: xmlns="..." and xmlns:p="..." */
  while (r.pos < n) {
    unsigned t = s[r.pos];
    const unsigned char *v;
    size_t vlen;
    uint32_t key;
    bool ok;
    if (t < NBFX_SHORT_XMLNS || t > NBFX_DICT_XMLNS)
      break;
    r.pos++;
    if (t == NBFX_SHORT_XMLNS)
      ok = rd_name(&r, &v, &vlen);
    else if (t == NBFX_XMLNS)
      ok = rd_name(&r, &v, &vlen) && rd_name(&r, &v, &vlen);
    else if (t == NBFX_SHORT_DICT_XMLNS)
      ok = rd_varint(&r, &key);
    else
      ok = rd_name(&r, &v, &vlen) && rd_varint(&r, &key);
    if (!ok)
      return app_err_set(err, APP_ERR_INPUT,
                         "DataContract string preamble: truncated namespace declaration at byte "
                         "%zu",
                         r.pos);
  }
  /* pass 1: check the framing and size the result */
  content_start = r.pos;
  do {
    APP_RETURN_IF_FAILED(pre_next(&r, kind, &rec, err));
    if (rec.len) {
      records++;
      if (rec.kind == 1)
        utf16 = true;
    }
    total += rec.kind == 1 ? rec.len / 2 * 3 : rec.len;
  } while (!rec.last);
  if (r.pos != n)
    return app_err_set(err, APP_ERR_INPUT,
                       "DataContract string preamble: %zu unexpected bytes after the end of the "
                       "<%s> element at byte %zu",
                       n - r.pos, kind == PRE_STRING ? "string" : "base64Binary", r.pos);
  /* pass 2: the common case, one UTF-8 record, needs no copy */
  r.pos = content_start;
  if (records <= 1 && !utf16) {
    do {
      APP_RETURN_IF_FAILED(pre_next(&r, kind, &rec, err));
      if (rec.len) {
        *out = (const char *)rec.p;
        *out_len = rec.len;
        return APP_OK;
      }
    } while (!rec.last);
    *out = "";
    *out_len = 0;
    return APP_OK;
  }
  buf = arena_alloc(a, total + 1);
  if (!buf)
    return no_memory(err);
  w = buf;
  do {
    APP_RETURN_IF_FAILED(pre_next(&r, kind, &rec, err));
    if (rec.kind == 1) {
      const char *u8 = NULL;
      size_t u8len;
      APP_RETURN_IF_FAILED(
          utf16_to_utf8(a, rec.p, rec.len, false, "DataContract string", &u8, &u8len, err));
      memcpy(w, u8, u8len);
      w += u8len;
    } else if (rec.len) {
      memcpy(w, rec.p, rec.len);
      w += rec.len;
    }
  } while (!rec.last);
  *w = '\0';
  *out = buf;
  *out_len = (size_t)(w - buf);
  return APP_OK;
}

/* .NET binary XML starts with an element record (0x40-0x77) followed by
 * binary lengths and record types; JSON and text never have control bytes
 * that early. */
static bool looks_like_binary_xml(const unsigned char *s, size_t n)
{
  size_t i;
  if (n < 2 || s[0] < 0x40 || s[0] > 0x77)
    return false;
  for (i = 1; i < n && i < 32; i++)
    if (s[i] < 0x20 && !ws(s[i]))
      return true;
  return false;
}

/* UTF-16 without a byte order mark: JSON starts with an ASCII character,
 * so one of the first two bytes is zero. 1 = little-endian, 2 = big. */
static int utf16_sniff(const unsigned char *s, size_t n)
{
  if (n < 4 || n % 2)
    return 0;
  if (s[1] == 0 && s[3] == 0 && (s[0] == '{' || s[0] == '"' || ws(s[0])))
    return 1;
  if (s[0] == 0 && s[2] == 0 && (s[1] == '{' || s[1] == '"' || ws(s[1])))
    return 2;
  return 0;
}

enum app_result dvbody_parse(struct arena *a, const char *content_type, const char *body,
                             size_t len, int max_depth, struct dvbody_result *out,
                             struct app_err *err)
{
  enum dvbody_ctype ct = dvbody_ctype(content_type);
  char csname[48];
  enum charset cs = charset_of(content_type, csname, sizeof csname);
  const unsigned char *s = (const unsigned char *)body;
  const char *layer = "message body";
  size_t n = len;
  unsigned wraps = 0;
  int depth;

  out->root = NULL;
  out->wraps = 0;
  if (ct == DVBODY_CT_MSBIN1)
    return app_err_set(err, APP_ERR_UNSUPPORTED,
                       "content type application/msbin1: the body is .NET binary XML, the "
                       "service endpoint's default format; " SWITCH_TO_JSON);
  if (ct == DVBODY_CT_XML)
    return app_err_set(err, APP_ERR_UNSUPPORTED,
                       "content type %.40s: the body is XML (service endpoint Message Format "
                       "XML); " SWITCH_TO_JSON,
                       content_type);
  if (cs == CS_OTHER)
    return app_err_set(err, APP_ERR_UNSUPPORTED,
                       "content type charset \"%s\" is not supported (Dataverse sends UTF-8)",
                       csname);
  if (n == 0)
    return app_err_set(err, APP_ERR_INPUT, "message body is empty");
  if ((cs == CS_UTF16 || cs == CS_UTF16LE || cs == CS_UTF16BE) &&
      !(n >= 2 && ((s[0] == 0xFF && s[1] == 0xFE) || (s[0] == 0xFE && s[1] == 0xFF)))) {
    const char *u8 = NULL;
    APP_RETURN_IF_FAILED(utf16_to_utf8(a, s, n, cs == CS_UTF16BE, layer, &u8, &n, err));
    s = (const unsigned char *)u8;
    wraps |= DVBODY_WRAP_UTF16;
  }
  for (depth = 0;; depth++) {
    struct json *root = NULL;
    enum pre_kind pk;
    size_t i = 0;
    int k;
    bool more = depth + 1 < DVBODY_MAX_LAYERS;

    if (n >= 2 && ((s[0] == 0xFF && s[1] == 0xFE) || (s[0] == 0xFE && s[1] == 0xFF)) && more) {
      const char *u8 = NULL;
      APP_RETURN_IF_FAILED(utf16_to_utf8(a, s + 2, n - 2, s[0] == 0xFE, layer, &u8, &n, err));
      s = (const unsigned char *)u8;
      wraps |= DVBODY_WRAP_UTF16;
      continue;
    }
    if (more && (k = utf16_sniff(s, n)) != 0) {
      const char *u8 = NULL;
      APP_RETURN_IF_FAILED(utf16_to_utf8(a, s, n, k == 2, layer, &u8, &n, err));
      s = (const unsigned char *)u8;
      wraps |= DVBODY_WRAP_UTF16;
      continue;
    }
    if (n >= 3 && s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF) {
      s += 3;
      n -= 3;
      wraps |= DVBODY_WRAP_BOM;
    }
    while (i < n && ws(s[i]))
      i++;
    if (i == n)
      return app_err_set(err, APP_ERR_INPUT, "%s is empty%s", layer, n ? " (only whitespace)" : "");
    if (s[i] == '<')
      return app_err_set(err, APP_ERR_UNSUPPORTED,
                         "%s is XML (it starts with '<'), not JSON; " SWITCH_TO_JSON, layer);
    if (i == 0 && more && (pk = preamble_kind(s, n)) != PRE_NONE) {
      const char *inner = NULL;
      APP_RETURN_IF_FAILED(unwrap_preamble(a, s, n, pk, &inner, &n, err));
      s = (const unsigned char *)inner;
      wraps |= DVBODY_WRAP_PREAMBLE;
      layer = pk == PRE_STRING ? "DataContract string in the message body"
                               : "DataContract byte[] in the message body";
      continue;
    }
    if (i == 0 && looks_like_binary_xml(s, n))
      return app_err_set(
          err, APP_ERR_UNSUPPORTED,
          "%s is .NET binary XML (byte 0x%02X then binary records), not JSON; " SWITCH_TO_JSON,
          layer, s[0]);
    if (json_parse(a, (const char *)s, n, max_depth, &root, err) != APP_OK) {
      /* name the layer in syntax and depth errors; the arena message
       * stands on its own */
      if (err && err->code == APP_ERR_LIMIT && strncmp(err->msg, "JSON", 4) != 0)
        return err->code;
      return app_err_wrap(err, "%s", layer);
    }
    if (root->type == JSON_STRING && more) {
      s = (const unsigned char *)root->str;
      n = root->len;
      wraps |= DVBODY_WRAP_STRING;
      layer = "JSON string in the message body";
      continue;
    }
    out->root = root;
    out->wraps = wraps;
    return APP_OK;
  }
}
