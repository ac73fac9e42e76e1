/* The one error type, and the table that turns its code into an exit status. */
#ifndef RG_ERR_H
#define RG_ERR_H

#define RG_WUR __attribute__((warn_unused_result))
#define RG_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))

/* Each value is the exit status it maps to (DESIGN.md "Exit codes"); a number is never
 * reused. RG_ESIGNAL is the exception: its status is 128 + the signal's number. */
enum rg_code {
    RG_OK = 0,
    RG_EINTERNAL = 1,
    RG_EUSAGE = 2,
    RG_ECONFIG = 3,
    RG_EFILES = 4,
    RG_ECONFLICT = 5,
    RG_EMIGRATION = 6,
    RG_EDATABASE = 7,
    RG_ELEASE = 8,
    RG_EAPI = 9,
    RG_EAPIDENIED = 10,
    RG_EPENDING = 11, /* only `status --exit-code`: something is pending */
    RG_ELOCK = 12,    /* a table lock not acquired before the lock_timeout retries ran out */
    RG_ESIGNAL = 128,
};

/* 512, not STYLE.md's 256: a failed statement's message carries file, line, SQLSTATE,
 * message, detail and hint, and truncating the hint loses what the operator needs. */
struct rg_err {
    enum rg_code code;
    char msg[512];
};

void rg_err_set(struct rg_err *err, enum rg_code code, const char *fmt, ...) RG_PRINTF(3, 4);
/* Puts context in front of the message; never replaces the lower layer's words. */
void rg_err_prefix(struct rg_err *err, const char *fmt, ...) RG_PRINTF(2, 3);
/* Puts a hint after the message, as written (a leading space is the caller's); what does not
 * fit is the hint's end, never the lower layer's words. */
void rg_err_suffix(struct rg_err *err, const char *fmt, ...) RG_PRINTF(2, 3);
void rg_err_clear(struct rg_err *err);

/* The documented exit status for a code (signo only matters for RG_ESIGNAL). */
int rg_err_exit_status(enum rg_code code, int signo);
/* A short stable name ("config", "database", ...) used in logs and the summary. */
const char *rg_err_code_name(enum rg_code code);
/* Whether running again may help (the table's last column). */
int rg_err_retryable(enum rg_code code);

#endif
