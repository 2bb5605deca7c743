/*
 * INCRBYFLOAT and HINCRBYFLOAT arithmetic as Redis does it: in C long double
 * (80-bit extended on x86-64), parsed with strtold and printed with
 * "%.17Lf" minus trailing zeros. Rust has no long double, and the results
 * differ from f64 (Redis prints 10.5 + 0.1 as "10.6"; f64 gives
 * 10.59999999999999964), so this small shim keeps replies byte-identical.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LONG_DOUBLE_CHARS (5 * 1024)

/* Redis's string2ld: 1 when s is a float strtold accepts whole, not NaN. */
static int string2ld(const char *s, size_t slen, long double *dp) {
    char buf[MAX_LONG_DOUBLE_CHARS];
    long double value;
    char *eptr;
    if (slen == 0 || slen >= sizeof(buf)) return 0;
    memcpy(buf, s, slen);
    buf[slen] = '\0';
    errno = 0;
    value = strtold(buf, &eptr);
    if (isspace((unsigned char)buf[0]) || eptr[0] != '\0' ||
        (size_t)(eptr - buf) != slen || /* an embedded NUL */
        (errno == ERANGE && (value == HUGE_VALL || value == -HUGE_VALL || fpclassify(value) == FP_ZERO)) ||
        errno == EINVAL || isnan(value))
        return 0;
    *dp = value;
    return 1;
}

/* 1 when s parses as a float; *finite says whether it is not infinite. */
int pgkv_ld_parse(const char *s, size_t slen, int *finite) {
    long double v;
    if (!string2ld(s, slen, &v)) return 0;
    *finite = !isinf(v);
    return 1;
}

/*
 * out = a + b, printed as Redis's ld2string(LD_STR_HUMAN).
 * Returns the length written, or -1 (a is not a float), -2 (b is not a
 * float), -3 (the sum is NaN or infinite), -4 (no room).
 */
int pgkv_ld_add(const char *a, size_t alen, const char *b, size_t blen, char *out, size_t outlen) {
    long double x, y, sum;
    int l;
    if (!string2ld(a, alen, &x)) return -1;
    if (!string2ld(b, blen, &y)) return -2;
    sum = x + y;
    if (isnan(sum) || isinf(sum)) return -3;
    l = snprintf(out, outlen, "%.17Lf", sum);
    if (l < 0 || (size_t)l + 1 > outlen) return -4;
    if (strchr(out, '.') != NULL) {
        char *p = out + l - 1;
        while (*p == '0') { p--; l--; }
        if (*p == '.') l--;
    }
    if (l == 2 && out[0] == '-' && out[1] == '0') { out[0] = '0'; l = 1; }
    out[l] = '\0';
    return l;
}

/* Redis's string2d: 1 when s is a double strtod accepts whole, not NaN,
 * without overflow or underflow to zero. */
int pgkv_string2d(const char *s, size_t slen, double *dp) {
    char buf[MAX_LONG_DOUBLE_CHARS];
    char *eptr;
    double value;
    if (slen == 0 || slen >= sizeof(buf)) return 0;
    memcpy(buf, s, slen);
    buf[slen] = '\0';
    errno = 0;
    value = strtod(buf, &eptr);
    if (isspace((unsigned char)buf[0]) || (size_t)(eptr - buf) != slen ||
        (errno == ERANGE && (value == HUGE_VAL || value == -HUGE_VAL || fpclassify(value) == FP_ZERO)) ||
        isnan(value))
        return 0;
    *dp = value;
    return 1;
}

/* strtod as Redis's zslParseRange uses it, on the argument as a C string:
 * only "read up to the string's end" and "not NaN" are checked (leading
 * space, "" and overflow pass), and an embedded NUL ends the string, so
 * "1\0x" reads as 1. */
int pgkv_strtod_range(const char *s, size_t slen, double *dp) {
    char small[MAX_LONG_DOUBLE_CHARS];
    char *buf = slen < sizeof(small) ? small : malloc(slen + 1);
    char *eptr;
    double value;
    int ok;
    if (buf == NULL) return 0;
    memcpy(buf, s, slen);
    buf[slen] = '\0';
    value = strtod(buf, &eptr);
    ok = eptr[0] == '\0' && !isnan(value);
    if (buf != small) free(buf);
    if (!ok) return 0;
    *dp = value;
    return 1;
}
