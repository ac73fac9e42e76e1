#include "err/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void rg_err_set(struct rg_err *err, enum rg_code code, const char *fmt, ...)
{
    va_list ap;

    if (!err)
        return;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

void rg_err_prefix(struct rg_err *err, const char *fmt, ...)
{
    char head[sizeof(err->msg)];
    size_t hlen, mlen;
    va_list ap;

    if (!err)
        return;
    va_start(ap, fmt);
    vsnprintf(head, sizeof(head) - 2, fmt, ap);
    va_end(ap);
    memcpy(head + strlen(head), ": ", 3);
    hlen = strlen(head);
    mlen = strlen(err->msg);
    /* The lower layer's words are the specific ones: keep as much of them as fits. */
    if (hlen + mlen >= sizeof(err->msg))
        mlen = sizeof(err->msg) - 1 - hlen;
    memmove(err->msg + hlen, err->msg, mlen);
    memcpy(err->msg, head, hlen);
    err->msg[hlen + mlen] = '\0';
}

void rg_err_suffix(struct rg_err *err, const char *fmt, ...)
{
    size_t mlen;
    va_list ap;

    if (!err)
        return;
    mlen = strlen(err->msg);
    va_start(ap, fmt);
    vsnprintf(err->msg + mlen, sizeof(err->msg) - mlen, fmt, ap);
    va_end(ap);
}

void rg_err_clear(struct rg_err *err)
{
    err->code = RG_OK;
    err->msg[0] = '\0';
}

static const struct code_info {
    enum rg_code code;
    const char *name;
    int retryable;
} codes[] = {
    {RG_OK, "ok", 0},
    {RG_EINTERNAL, "internal", 0},
    {RG_EUSAGE, "usage", 0},
    {RG_ECONFIG, "config", 0},
    {RG_EFILES, "files", 0},
    {RG_ECONFLICT, "conflict", 0},
    {RG_EMIGRATION, "migration", 0},
    {RG_EDATABASE, "database", 1},
    {RG_ELEASE, "lease", 1},
    {RG_EAPI, "api", 1},
    {RG_EAPIDENIED, "api-denied", 0},
    {RG_EPENDING, "pending", 0},
    {RG_ELOCK, "lock", 1},
    {RG_ESIGNAL, "signal", 1},
};

/* An unknown code is a bug, and reads as the internal error. */
static const struct code_info *info(enum rg_code code)
{
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (codes[i].code == code)
            return &codes[i];
    return &codes[1];
}

int rg_err_exit_status(enum rg_code code, int signo)
{
    return code == RG_ESIGNAL ? 128 + signo : (int)info(code)->code;
}

const char *rg_err_code_name(enum rg_code code)
{
    return info(code)->name;
}

int rg_err_retryable(enum rg_code code)
{
    return info(code)->retryable;
}
