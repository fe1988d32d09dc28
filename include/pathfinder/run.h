/* pathfinder run: experiments in run folders, resumable, and the one state
 * format they share.
 *
 * Each call runs a whole experiment into a folder (made if missing, locked
 * while in use), writes its tables, state and analysis there, and can be
 * rerun to resume where it stopped, bit for bit. */
#ifndef PATHFINDER_RUN_H
#define PATHFINDER_RUN_H

#include "pathfinder/core.h"
#include "pathfinder/exp.h"
#include "pathfinder/io.h"

/* ----------------------------------------------------------------- states */

/* State files (state.c): the one format of every resumable run. Named,
 * typed, counted fields, little-endian, versioned, with a CRC-32; see the
 * format at the top of state.c. Build one with pf_state_new and the put
 * calls (errors surface at pf_state_write), read one back with
 * pf_state_read and ask for fields by name, type and count. */
#define PF_STATE_VERSION 2
typedef enum {
    PF_STATE_BYTES = 1, PF_STATE_I64 = 2, PF_STATE_U64 = 3, PF_STATE_F64 = 4, PF_STATE_F32 = 5
} pf_state_type;
typedef struct pf_state pf_state;

pf_state *pf_state_new(const char *kind);
void pf_state_free(pf_state *s);
const char *pf_state_kind(const pf_state *s);
void pf_state_put(pf_state *s, const char *name, pf_state_type type, const void *v, size_t count);
void pf_state_put_i64(pf_state *s, const char *name, int64_t v);
void pf_state_put_f64(pf_state *s, const char *name, double v);
void pf_state_put_str(pf_state *s, const char *name, const char *v);
/* Written atomically. */
int pf_state_write(const pf_state *s, const char *path, pf_error *err);
/* kind NULL: any. Old (0.1) state files are refused with a message. */
int pf_state_read(const char *path, const char *kind, pf_state **out, pf_error *err);
/* Element count of a field of that type, or -1 if there is none. */
long pf_state_count(const pf_state *s, const char *name, pf_state_type type);
/* Copy exactly count elements; an error names the file and the field. */
int pf_state_get(const pf_state *s, const char *name, pf_state_type type, void *v, size_t count,
                 pf_error *err);
const void *pf_state_data(const pf_state *s, const char *name, pf_state_type type, size_t *count);
int pf_state_get_i64(const pf_state *s, const char *name, int64_t *v, pf_error *err);
int pf_state_get_f64(const pf_state *s, const char *name, double *v, pf_error *err);
int pf_state_get_str(const pf_state *s, const char *name, char *v, size_t n, pf_error *err);
/* A trainer's state (pf_trainer_get_state) as fields PREFIX.kind, .step,
 * .rng, .m, .v (the optimizer buffers it has), and back. */
void pf_state_put_trainer(pf_state *s, const char *prefix, const pf_trainer_state *ts);
int pf_state_get_trainer(const pf_state *s, const char *prefix, size_t n_params,
                         pf_trainer_state *ts, pf_error *err);

#endif
