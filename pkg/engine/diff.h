/* A bounded unified diff, for drift messages. */
#ifndef RG_DIFF_H
#define RG_DIFF_H

/* The first hunk in which the lines of b differ from a's (NUL-terminated), as a unified
 * diff under "--- a_label" and "+++ b_label" headers, with 3 lines of context: at most 40
 * lines, each cut at 160 bytes ("..." marks a cut), matched within the first 200 changed
 * lines of each side, so the time and memory stay small whatever the files. Allocated;
 * NULL when a and b are the same. */
char *rg_engine_diff(const char *a, const char *b, const char *a_label, const char *b_label);

#endif
