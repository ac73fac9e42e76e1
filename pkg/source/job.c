/* A start's load on a thread of its own, so that reading the files overlaps connecting to
 * the database; with a glance (glance.c) first for a migrate to the latest version, and
 * the full load (rg_source_complete) once the history differs. What a source holds either
 * way: its count and latest version. */
#include "source/source.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mem/mem.h"
#include "source/internal.h"

/* A load on a thread of its own, so that it overlaps the connection. */
struct rg_source_job {
    pthread_t thread;
    bool threaded, glance;
    struct rg_source_help help; /* where finish helps with a glance's stats */
    char *dir;
    void (*failed)(void *);
    void *arg;
    struct rg_source src;
    struct rg_err err;
    int rc;
};

static void *load_job(void *arg)
{
    struct rg_source_job *job = arg;

    if (job->glance && rg_source_glance(job->dir, &job->src, &job->help))
        job->rc = 0;
    else
        job->rc = rg_source_load(job->dir, &job->src, &job->err);
    if (job->rc != 0 && job->failed)
        job->failed(job->arg);
    rg_source_help_finished(&job->help);
    return NULL;
}

struct rg_source_job *rg_source_load_start(const char *dir, bool glance, void (*failed)(void *),
                                           void *arg)
{
    struct rg_source_job *job = rg_calloc(1, sizeof(*job));

    job->dir = rg_strdup(dir);
    job->glance = glance;
    job->failed = failed;
    job->arg = arg;
    rg_source_help_init(&job->help);
    job->threaded = pthread_create(&job->thread, NULL, load_job, job) == 0;
    /* No thread to be had: loaded here, as without one (a pool offered then finds no
     * helper, and its withdrawal nobody to wait for). */
    if (!job->threaded)
        load_job(job);
    return job;
}

int rg_source_load_finish(struct rg_source_job *job, struct rg_source *src, struct rg_err *err)
{
    int rc;

    if (job->threaded) {
        rg_source_help_out(&job->help);
        pthread_join(job->thread, NULL);
    }
    rg_source_help_destroy(&job->help);
    rc = job->rc;
    *src = job->src;
    if (rc != 0)
        *err = job->err;
    free(job->dir);
    free(job);
    return rc;
}

int rg_source_complete(struct rg_source *src, struct rg_err *err)
{
    char *dir;
    int rc;

    if (!src->glance.taken)
        return 0;
    dir = src->dir;
    src->dir = NULL;
    rg_source_free(src);
    rc = rg_source_load(dir, src, err);
    free(dir);
    return rc;
}

size_t rg_source_count(const struct rg_source *src)
{
    return src->glance.taken ? src->glance.n : src->n;
}

int64_t rg_source_latest(const struct rg_source *src)
{
    if (src->glance.taken)
        return src->glance.latest;
    return src->n ? src->items[src->n - 1].version : 0;
}
